"""``[gc] grace_seconds`` sets the grace period of a shared blob store from TOML."""

import pytest

import lash
from lash.errors import ConfigError


def test_grace_seconds_from_config_reaches_the_backend():
    with lash.open({"store": {"backend": "memory"}, "gc": {"grace_seconds": 120}}) as handle:
        assert handle.backend.gc_grace_seconds == 120.0


def test_blob_younger_than_the_configured_grace_survives_gc():
    with lash.open({"store": {"backend": "memory"}, "gc": {"grace_seconds": 3600}}) as handle:
        ref = handle.backend.blobs.put(b"uploaded by a commit still in flight")
        assert handle.gc().deleted_blob_count == 0
        assert handle.backend.blobs.has(ref)


def test_negative_grace_names_the_key():
    with pytest.raises(ConfigError, match=r"gc\.grace_seconds"):
        lash.open({"store": {"backend": "memory"}, "gc": {"grace_seconds": -1}})
