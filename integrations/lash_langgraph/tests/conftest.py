"""Fixtures: every lash backend the saver is proven on (lash's ``lash_backend_config`` plugin).

``lash_config`` runs a test once per backend of :data:`lash.testing.backends.BACKENDS`
(memory, SQLite, SQLite+S3 on moto's server, Postgres); each call returns a fresh store's config.
"""

from __future__ import annotations

from typing import Any

import pytest

from lash.testing.backends import ConfigFactory

__all__ = ["ConfigFactory"]


@pytest.fixture
def lash_config(lash_backend_config: ConfigFactory) -> ConfigFactory:
    """A factory of fresh lash configs, once for each backend."""
    return lash_backend_config


@pytest.fixture
def sqlite_config(lash_sqlite_config: dict[str, Any]) -> dict[str, Any]:
    """One durable SQLite store (several savers or processes can open it)."""
    return lash_sqlite_config
