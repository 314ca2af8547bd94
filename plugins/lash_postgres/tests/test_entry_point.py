"""Loading the ``lash`` entry point costs nothing to a configuration that does not use PostgreSQL."""

from __future__ import annotations

import inspect
import subprocess
import sys

import lash_postgres
from lash_postgres.backend import PostgresBackend

NOT_IMPORTED = (
    "import sys, {module}; {action}; "
    "assert not [m for m in sys.modules if m.startswith('psycopg')], sorted(sys.modules)"
)


def _run(module: str, action: str) -> subprocess.CompletedProcess[str]:
    code = NOT_IMPORTED.format(module=module, action=action)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)


def test_importing_the_plugin_does_not_import_psycopg() -> None:
    done = _run("lash_postgres", "lash_postgres.lash_register_backends(lambda *a, **k: None)")
    assert done.returncode == 0, done.stderr


def test_opening_lash_without_postgres_configured_does_not_import_psycopg() -> None:
    done = _run("lash", "lash.open({'store': {'backend': 'memory'}}).close()")
    assert done.returncode == 0, done.stderr


def test_the_registered_factory_takes_exactly_the_backend_options() -> None:
    factory = inspect.signature(lash_postgres.postgres_backend).parameters
    backend = inspect.signature(PostgresBackend).parameters
    assert [(p.name, p.kind, p.default) for p in factory.values()] == [
        (p.name, p.kind, p.default) for p in backend.values()
    ]
