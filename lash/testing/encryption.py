"""Run the conformance suite with encryption on: a key provider holding keys in memory.

A backend author parametrises the ``backend`` fixture so that every contract test also runs
with every record and blob sealed (needs ``lash[encryption]``)::

    @pytest.fixture(params=["plain", "encrypted"])
    def backend(self, request, tmp_path):
        backend = MyBackend(path=tmp_path)
        yield encrypt_if(request.param == "encrypted", backend)
        backend.close()

and re-attaches ``backend.encryption`` to the new backend in ``reopen``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TypeVar

from lash.errors import KeyUnavailableError
from lash.keys import KEY_BYTES, Keyring

B = TypeVar("B")


class StaticKeyProvider:
    """Keys given in code (tests, or an app that fetched them itself); never shown in its repr."""

    name = "static"

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys = dict(keys)

    def __repr__(self) -> str:
        return f"<StaticKeyProvider {sorted(self._keys)!r}>"

    def key_ids(self) -> Sequence[str]:
        return list(self._keys)

    def load_key(self, key_id: str) -> bytes:
        if key_id not in self._keys:
            raise KeyUnavailableError(key_id, self.name, f"not among its keys ({', '.join(self._keys) or 'none'})")
        return self._keys[key_id]


def random_keyring(key_id: str = "conformance") -> Keyring:
    """A keyring whose write key is a fresh random key."""
    return Keyring(StaticKeyProvider.name, StaticKeyProvider({key_id: os.urandom(KEY_BYTES)}), key_id)


def encrypt_if(enabled: bool, backend: B, keyring: Keyring | None = None) -> B:
    """``backend`` with :class:`lash.encryption.Encryption` attached when ``enabled`` (a random key by default)."""
    if enabled:
        from lash.encryption import Encryption  # imports cryptography: only for encrypted runs

        Encryption(keyring or random_keyring()).attach(backend, type(backend).__name__)
    return backend
