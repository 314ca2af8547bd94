"""Every error lash raises.

All subclass :class:`LashError`, so callers can catch one type. Storage problems are
:class:`StoreError`; configuration and plugin problems name the file, key or distribution
that would fix them. A raw ``KeyError``, ``sqlite3.Error`` or ``botocore`` exception never
escapes a lash call: backends translate them into :class:`BackendError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class LashError(Exception):
    """Base class of every lash error."""


class StoreError(LashError):
    """A storage operation failed or was refused."""


class SessionBindingMismatch(StoreError):
    """A store bound to one session was asked to act on another."""

    def __init__(self, bound: str, attempted: str) -> None:
        self.bound = bound
        self.attempted = attempted
        super().__init__(f"store is bound to session {bound!r}, not {attempted!r}")


class UnsupportedReadScope(StoreError):
    """The read scope is not one the store understands."""

    def __init__(self, scope: object) -> None:
        self.scope = scope
        super().__init__(f"unsupported read scope: {scope!r} (use FullGraph() or ActivePath())")


class HeadRevisionConflict(StoreError):
    """Another writer moved the head first. Retryable: refresh, then commit again."""

    retryable = True

    def __init__(self, expected: int | None, actual: int | None) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"head revision conflict: expected {expected}, stored {actual} "
            "(another writer committed first; refresh and retry)"
        )


class BackendError(StoreError):
    """The storage backend failed (I/O, lock timeout, server unreachable, ...)."""


class BlobIntegrityError(StoreError):
    """A blob's bytes do not hash to its ref, or its envelope cannot be decoded."""

    def __init__(self, ref: str, reason: str = "content does not match its sha256") -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"blob {ref}: {reason}")


class SchemaVersionError(StoreError):
    """Stored data was written by a newer lash than this one."""

    def __init__(self, found: int, supported: int, what: str = "record") -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"{what} has schema version {found}, this lash supports up to {supported}; upgrade lash to read it"
        )


class CorruptRecordError(StoreError):
    """Stored bytes could not be decoded into the record they should hold."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"corrupt {what}: {reason}")


class SessionDeletedError(StoreError):
    """The session was deleted while this store had it open; nothing was written.

    Open it again to start a new session under the same id.
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"session {session_id!r} was deleted; nothing was written (open it again to start anew)")


class InvalidSessionId(StoreError, ValueError):
    """A session id lash refuses to store (empty, contains NUL, too long, not a str)."""

    def __init__(self, session_id: object, reason: str) -> None:
        self.session_id = session_id
        shown = repr(session_id)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(f"invalid session id {shown}: {reason}")


class InvalidGraphError(StoreError, ValueError):
    """A graph change would break the session graph (unknown parent, conflicting node id)."""


class SessionClosedError(LashError):
    """The session or handle was closed; open a new one."""


class SessionBusyError(LashError):
    """A session's storage operation started while another one of it was still running (lash.aio)."""

    def __init__(self, session_id: str, running: str, attempted: str) -> None:
        self.session_id = session_id
        self.running = running
        self.attempted = attempted
        super().__init__(
            f"session {session_id!r} is busy: {running}() is still running in another task, so {attempted}() "
            "was refused; await the first call before starting the next (or give each task its own session)"
        )


class AsyncUsageError(LashError):
    """``lash.aio`` was used where it cannot work: outside a running event loop, or from another loop."""


class ConfigError(LashError):
    """Configuration is invalid. Names the file and the key, and lists valid choices."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        key: str | None = None,
        choices: Sequence[str] = (),
    ) -> None:
        self.message = message
        self.path = path
        self.key = key
        self.choices = tuple(choices)
        where = str(path) if path is not None else "<config>"
        if key:
            where += f": [{key}]" if "." not in key else f": {key}"
        text = f"{where}: {message}"
        if self.choices:
            text += f" (valid: {', '.join(self.choices)})"
        super().__init__(text)


class PluginError(LashError):
    """A plugin could not be loaded or registered something invalid."""


class PluginNotFound(PluginError, LookupError):
    """No installed plugin registered ``name`` as a ``kind``."""

    def __init__(self, kind: str, name: str, available: Sequence[str], install_hint: str | None = None) -> None:
        self.kind = kind
        self.name = name
        self.available = tuple(available)
        self.install_hint = install_hint
        installed = ", ".join(self.available) if self.available else "none"
        text = f"no {kind} named {name!r} is installed (installed: {installed})"
        if install_hint:
            text += f"; `pip install {install_hint}` provides it"
        super().__init__(text)


class CompactionError(LashError):
    """A compactor raised or returned something that is not a CompactionResult."""


class SerializationError(StoreError, TypeError):
    """A value cannot be encoded with msgpack (e.g. a node body holding an arbitrary object)."""


class EncryptionError(StoreError):
    """Encrypted data cannot be read or written (``[encryption]``, :mod:`lash.encryption`).

    Messages name the session and the record or blob ref, and the key id, never key material.
    """


class KeyUnavailableError(EncryptionError):
    """The key provider cannot supply the master key of ``key_id`` (unset, missing, rotated away)."""

    def __init__(self, key_id: str, provider: str, reason: str, *, needed_for: str | None = None) -> None:
        self.key_id = key_id
        self.provider = provider
        self.reason = reason
        self.needed_for = needed_for
        if needed_for:
            text = f"{needed_for} is encrypted with key id {key_id!r}, which key provider {provider!r} cannot supply"
        else:
            text = f"key provider {provider!r} cannot supply key id {key_id!r}"
        super().__init__(f"{text}: {reason}")


class DecryptionError(EncryptionError):
    """Stored bytes did not decrypt: a wrong key, altered bytes, or encryption switched on or off."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        Exception.__init__(self, f"cannot decrypt {what}: {reason}")  # not cooperative: see BlobDecryptionError


class BlobDecryptionError(DecryptionError, BlobIntegrityError):
    """A blob did not decrypt; a :class:`BlobIntegrityError` too, so callers checking blobs catch it."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        DecryptionError.__init__(self, f"blob {ref}", reason)
