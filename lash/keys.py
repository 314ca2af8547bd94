"""Master keys for encryption at rest: the key-provider contract and the built-in ``env`` and ``file`` providers.

A key provider maps *key ids* to 32-byte master keys. Key ids are public names recorded in
every encrypted record so that keys can rotate: ``[encryption] key_id`` selects the key new
data is written with, and any other id the provider knows stays readable. The key material
itself never leaves :class:`MasterKey` (no repr, no message, no config file).

This module needs no ``cryptography``: it is registered as a built-in plugin on every
:func:`lash.open`, while :mod:`lash.encryption` is imported only when ``[encryption]`` is set.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import attrs

from lash.errors import ConfigError, KeyUnavailableError
from lash.hookspecs import hookimpl
from lash.plugins import from_options

KEY_BYTES = 32
"""AES-256: every master key is 32 random bytes, written as base64."""

DEFAULT_KEY_ID = "default"
"""The id of the single key of ``options = { var = ... }`` / ``{ path = ... }``."""

DEFAULT_ENV_VAR = "LASH_MASTER_KEY"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@attrs.frozen(repr=False)
class MasterKey:
    """A master key and its id. The material is never shown: not in repr, str or errors."""

    key_id: str
    material: bytes = attrs.field(eq=False)

    def __repr__(self) -> str:
        return f"<MasterKey {self.key_id!r}>"

    __str__ = __repr__


@runtime_checkable
class KeyProvider(Protocol):
    """What a ``lash_register_key_providers`` factory returns."""

    def key_ids(self) -> Sequence[str]:
        """The ids this provider may supply (names only; used in error messages)."""
        ...

    def load_key(self, key_id: str) -> bytes:
        """The 32 raw bytes of ``key_id``; raise :class:`KeyUnavailableError` when it cannot."""
        ...


def generate_key() -> str:
    """A new random master key, base64 (what ``LASH_MASTER_KEY`` or a key file holds)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def decode_key(text: str, key_id: str, provider: str, source: str) -> bytes:
    """The 32 bytes of base64 ``text`` from ``source``; errors name the source, never the text."""
    try:
        material = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        material = b""
    if len(material) != KEY_BYTES:
        raise KeyUnavailableError(key_id, provider, f"{source} does not hold base64 of {KEY_BYTES} bytes")
    return material


def looks_like_key(text: str) -> bool:
    """Whether ``text`` is itself a base64 key (a key pasted where a name belongs)."""
    try:
        return len(base64.b64decode(text.strip(), validate=True)) == KEY_BYTES
    except (binascii.Error, ValueError):
        return False


def path_holds_key(path: str) -> bool:
    """Whether ``path`` ends in a pasted key (config resolves relative paths, so the key may follow a directory)."""
    return any(looks_like_key(path[i + 1 :]) for i, char in enumerate(path) if char == "/") or looks_like_key(path)


def _sources(single: str | None, many: Mapping[str, str] | None, single_name: str, many_name: str) -> dict[str, str]:
    """Key id → source from ``single`` (id ``default``) or the ``many`` table, checked for pasted keys."""
    if single is not None and many is not None:
        raise ConfigError(f"give either {single_name} or {many_name}, not both", key=f"options.{many_name}")
    if many is None:
        entries = {DEFAULT_KEY_ID: single}
        key_of = {DEFAULT_KEY_ID: single_name}
    else:
        if not isinstance(many, Mapping) or not many:
            raise ConfigError("must be a non-empty table of key id = source", key=f"options.{many_name}")
        entries = dict(many)
        key_of = {key_id: f"{many_name}.{key_id}" for key_id in many}
    for key_id, source in entries.items():
        if not isinstance(key_id, str) or not key_id or not isinstance(source, str) or not source:
            raise ConfigError("key ids and their sources must be non-empty strings", key=f"options.{key_of[key_id]}")
        if looks_like_key(source):
            raise ConfigError(
                "holds a key itself; keys never go into config: name where the key is instead",
                key=f"options.{key_of[key_id]}",
            )
    return entries  # type: ignore[return-value]


class EnvKeyProvider:
    """Base64 master keys in environment variables (``key_provider = "env"``).

    ``var`` names the variable of the single key ``default`` (``LASH_MASTER_KEY`` when
    nothing is given); ``keys = { <key id> = "<VARIABLE>", ... }`` names several, for rotation.
    """

    name = "env"

    def __init__(self, *, var: str | None = None, keys: Mapping[str, str] | None = None) -> None:
        single = DEFAULT_ENV_VAR if var is None and keys is None else var
        self.variables = _sources(single, keys, "var", "keys")
        for key_id, variable in self.variables.items():
            if not _ENV_NAME.fullmatch(variable):
                where = "var" if keys is None else f"keys.{key_id}"
                raise ConfigError("is not an environment variable name", key=f"options.{where}")

    def __repr__(self) -> str:
        return f"<EnvKeyProvider {self.variables!r}>"

    def key_ids(self) -> Sequence[str]:
        return list(self.variables)

    def load_key(self, key_id: str) -> bytes:
        variable = self.variables.get(key_id)
        if variable is None:
            raise KeyUnavailableError(key_id, self.name, f"no variable is configured for it (known: {_known(self)})")
        text = os.environ.get(variable)
        if not text:
            raise KeyUnavailableError(key_id, self.name, f"environment variable {variable} is not set")
        return decode_key(text, key_id, self.name, f"environment variable {variable}")


class FileKeyProvider:
    """Base64 master keys in files (``key_provider = "file"``).

    ``path`` is the file of the single key ``default``; ``keys_dir`` is a directory whose
    files are keys named by their file name (a mounted secret volume), for rotation.
    """

    name = "file"

    def __init__(self, *, path: str | None = None, keys_dir: str | None = None) -> None:
        if path is None and keys_dir is None:
            raise ConfigError("the file provider needs path (one key) or keys_dir (one file per key id)", key="options")
        if path is not None and keys_dir is not None:
            raise ConfigError("give either path or keys_dir, not both", key="options.keys_dir")
        for name, value in (("path", path), ("keys_dir", keys_dir)):
            if value is not None and path_holds_key(value):
                raise ConfigError(
                    "holds a key itself; keys never go into config: name where the key is instead",
                    key=f"options.{name}",
                )
        self.path = None if path is None else Path(path)
        self.keys_dir = None if keys_dir is None else Path(keys_dir)

    def __repr__(self) -> str:
        return f"<FileKeyProvider {str(self.path or self.keys_dir)!r}>"

    def _file(self, key_id: str) -> Path | None:
        if self.path is not None:
            return self.path if key_id == DEFAULT_KEY_ID else None
        assert self.keys_dir is not None
        if key_id in ("", ".", "..") or "/" in key_id or "\\" in key_id or "\x00" in key_id:
            return None
        return self.keys_dir / key_id

    def key_ids(self) -> Sequence[str]:
        if self.path is not None:
            return [DEFAULT_KEY_ID]
        assert self.keys_dir is not None
        try:
            return sorted(p.name for p in self.keys_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        except OSError:
            return []

    def load_key(self, key_id: str) -> bytes:
        file = self._file(key_id)
        if file is None:
            raise KeyUnavailableError(key_id, self.name, f"no key file is configured for it (known: {_known(self)})")
        try:
            text = file.read_text("ascii")
        except FileNotFoundError:
            raise KeyUnavailableError(key_id, self.name, f"key file {file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not base64 text"
            raise KeyUnavailableError(key_id, self.name, f"key file {file} cannot be read ({reason})") from None
        return decode_key(text, key_id, self.name, f"key file {file}")


def _known(provider: KeyProvider) -> str:
    return ", ".join(repr(k) for k in provider.key_ids()) or "none"


class Keyring:
    """The master keys one handle uses: the write key, loaded at open, and older ones on demand.

    Loaded keys are cached for the handle's lifetime; a key the provider cannot supply raises
    :class:`KeyUnavailableError` naming the record that needed it.
    """

    def __init__(self, provider_name: str, provider: KeyProvider, write_key_id: str) -> None:
        self.provider_name = provider_name
        self.provider = provider
        self._keys: dict[str, MasterKey] = {}
        self._lock = threading.Lock()
        self.write_key_id = write_key_id
        self.write_key = self.get(write_key_id)

    def __repr__(self) -> str:
        return f"<Keyring provider={self.provider_name!r} write_key_id={self.write_key_id!r}>"

    def get(self, key_id: str, *, needed_for: str | None = None) -> MasterKey:
        """The master key of ``key_id``; ``needed_for`` names the record in the error."""
        key = self._keys.get(key_id)
        if key is not None:
            return key
        try:
            material = self.provider.load_key(key_id)
        except KeyUnavailableError as exc:
            raise KeyUnavailableError(key_id, self.provider_name, exc.reason, needed_for=needed_for) from None
        except Exception as exc:  # a third-party provider failing in its own way
            reason = f"{type(exc).__name__}: {exc}"
            raise KeyUnavailableError(key_id, self.provider_name, reason, needed_for=needed_for) from exc
        if not isinstance(material, bytes) or len(material) != KEY_BYTES:
            reason = f"it returned something that is not {KEY_BYTES} bytes"
            raise KeyUnavailableError(key_id, self.provider_name, reason, needed_for=needed_for)
        with self._lock:
            return self._keys.setdefault(key_id, MasterKey(key_id, material))


@hookimpl
def lash_register_key_providers(register: Callable[..., None]) -> None:
    register("env", from_options(EnvKeyProvider))
    register("file", from_options(FileKeyProvider))
