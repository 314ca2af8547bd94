"""``lash_backend_config``, the fixture integrations use to run on every backend, gives working, isolated stores."""

from __future__ import annotations

import lash
from lash.testing.backends import BACKENDS, ConfigFactory


def test_each_call_is_a_fresh_store_and_a_durable_one_keeps_commits(lash_backend_config: ConfigFactory) -> None:
    first = lash_backend_config()
    with lash.open(first) as handle:
        session = handle.session("agent")
        session.append_message("user", "hello")
        session.commit()
        assert [info.session_id for info in handle.sessions()] == ["agent"]
    if first["store"]["backend"] != "memory":  # a memory store lives as long as its handle
        with lash.open(first) as handle:
            assert [m["content"] for m in handle.session("agent").messages()] == ["hello"]
    with lash.open(lash_backend_config()) as handle:
        assert handle.sessions() == []


def test_the_cases_are_the_backends_integrations_are_proven_on() -> None:
    assert list(BACKENDS) == ["memory", "sqlite", "sqlite+s3", "postgres"]
