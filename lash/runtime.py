"""``lash.open()`` and the :class:`Lash` handle: config, plugins, backend and compactor.

:class:`LashCore` is what the synchronous :class:`Lash` and ``lash.aio.Lash`` share: the
plugin manager, backend and compactor built from the config, and the plugin plumbing the
operations in :mod:`lash.operations` call (restore, tools, snapshots, automatic GC).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lash import codec, operations
from lash.blobs import BlobStore
from lash.compaction import Compactor
from lash.config import EncryptionSection, LashConfig, load_config
from lash.errors import (
    ConfigError,
    KeyUnavailableError,
    LashError,
    PluginNotFound,
    SerializationError,
    SessionClosedError,
)
from lash.keys import Keyring
from lash.model import CommitResult, GcReport, PluginSnapshot, SessionInfo
from lash.plugins import PluginManager
from lash.retention import RetentionReport, apply_retention
from lash.session import Residency, Session, SessionState, UsageReport
from lash.store import Backend, check_session_id

if TYPE_CHECKING:
    from lash.session import SessionBase


class LashCore:
    """Config, plugin manager, backend and compactor, and the plugin calls both faces make.

    Building one may do I/O (a backend factory connects or creates directories):
    ``lash.aio`` builds it in its worker pool.
    """

    def __init__(self, config: LashConfig, *, plugins: Iterable[object] = (), entry_points: bool = True) -> None:
        self.config = config
        self.plugin_manager = PluginManager(disable=config.plugins.disable, plugins=plugins, entry_points=entry_points)
        self.backend: Backend = self._build(
            "store", self.plugin_manager.backends, config.store.backend, config.store.options
        )
        try:
            if config.blobs is not None:
                blobs: BlobStore = self._build(
                    "blobs", self.plugin_manager.blob_stores, config.blobs.backend, config.blobs.options
                )
                attach = getattr(self.backend, "attach_blob_store", None)
                if attach is None:
                    raise ConfigError(
                        f"backend {config.store.backend!r} cannot keep blobs in a separate store",
                        path=config.source,
                        key="blobs.backend",
                    )
                attach(blobs)
            if config.gc.grace_seconds is not None:
                if not hasattr(self.backend, "gc_grace_seconds"):
                    raise ConfigError(
                        f"backend {config.store.backend!r} has no GC grace period to set",
                        path=config.source,
                        key="gc.grace_seconds",
                    )
                self.backend.gc_grace_seconds = float(config.gc.grace_seconds)
            if config.encryption is not None:
                self._encrypt(config.encryption)
            self.compactor: Compactor = self._build(
                "compaction", self.plugin_manager.compactors, config.compaction.strategy, config.compaction.options
            )
        except BaseException:
            self.backend.close()
            raise

    def _build(self, section: str, registry: Any, name: str, options: Mapping[str, Any]) -> Any:
        key = {"compaction": "strategy", "encryption": "key_provider"}.get(section, "backend")
        try:
            return registry.create(name, options)
        except PluginNotFound as exc:
            where = self.config.source or "the config passed to lash.open()"
            exc.add_note(f"configured as [{section}] {key} = {name!r} in {where}")
            raise
        except ConfigError as exc:
            if exc.path is not None:
                raise
            raise ConfigError(
                exc.message,
                path=self.config.source,
                key=f"{section}.{exc.key}" if exc.key else section,
                choices=exc.choices,
            ) from exc

    def _encrypt(self, section: EncryptionSection) -> None:
        """Attach ``[encryption]``, loading the write key now: a missing key fails at open, never mid-commit."""
        from lash.encryption import Encryption  # imports cryptography: only when [encryption] is set

        provider = self._build("encryption", self.plugin_manager.key_providers, section.key_provider, section.options)
        where = self.config.source or "the config passed to lash.open()"
        try:
            Encryption(Keyring(section.key_provider, provider, section.key_id)).attach(
                self.backend, self.config.store.backend
            )
        except KeyUnavailableError as exc:
            exc.add_note(f"configured as [encryption] key_id = {section.key_id!r} in {where}")
            raise
        except ConfigError as exc:
            raise ConfigError(exc.message, path=self.config.source, key=exc.key) from exc

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.config.store.backend!r} source={self.config.source}>"

    # -- plugin plumbing used by the operations --------------------------------------------

    def restore_plugins(self, session: SessionBase, snapshot: PluginSnapshot | None) -> None:
        """Hand each plugin its stored snapshot (on resume)."""
        if snapshot is None:
            return
        for impl in self.plugin_manager.hook.lash_restore_session.get_hookimpls():
            if impl.plugin_name in snapshot.entries:
                impl.function(session=session, snapshot=snapshot.entries[impl.plugin_name])

    def gather_plugin_tools(self, session: SessionBase) -> None:
        """Ask plugins which tools they offer now (on open and before each commit)."""
        hook = self.plugin_manager.hook
        session.tools.set_plugin_tools(
            spec for specs in hook.lash_session_tools(session=session) if specs for spec in specs
        )

    def gather_plugin_state(self, session: SessionBase) -> None:
        """Ask plugins for their tools and snapshots before a commit."""
        self.gather_plugin_tools(session)
        packed = {}
        for impl in self.plugin_manager.hook.lash_snapshot_session.get_hookimpls():
            value = impl.function(session=session)
            if value is None:
                continue
            try:
                packed[impl.plugin_name] = codec.pack(value)
            except SerializationError as exc:
                raise SerializationError(
                    f"plugin {impl.plugin_name!r} returned a snapshot that cannot be stored: {exc}"
                ) from exc
        session._state.set_plugin_entries(packed)

    def retention(self, dry_run: bool) -> RetentionReport:
        """Enforce ``[retention]`` (see :mod:`lash.retention`); no section, nothing happens."""
        if self.config.retention is None:
            return RetentionReport(dry_run)
        return apply_retention(self.backend, self.config.retention, dry_run=dry_run)  # type: ignore[arg-type]

    def auto_gc_due(self, result: CommitResult) -> bool:
        """Whether ``[gc] auto_every_commits`` asks for a per-session blob GC after this commit."""
        every = self.config.gc.auto_every_commits
        return bool(every) and result.head_revision % every == 0 and self.backend.blobs is None


class Lash(LashCore):
    """An open lash: one plugin manager, one backend, one compactor. Use as a context manager."""

    def __init__(self, config: LashConfig, *, plugins: Iterable[object] = (), entry_points: bool = True) -> None:
        super().__init__(config, plugins=plugins, entry_points=entry_points)
        self._sessions: list[Session] = []
        self._closed = False

    def __enter__(self) -> Lash:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError("this Lash handle is closed")

    # -- sessions -------------------------------------------------------------------------

    def session(
        self,
        session_id: str = "root",
        *,
        residency: Residency = "keep_all",
        plugin_options: Mapping[str, Any] | None = None,
    ) -> Session:
        """Open (creating if needed) a root session and resume its committed state."""
        return self._open(session_id, residency=residency, plugin_options=plugin_options, parent_session_id=None)

    def _open(
        self,
        session_id: str,
        *,
        residency: Residency,
        plugin_options: Mapping[str, Any] | None,
        parent_session_id: str | None,
    ) -> Session:
        self._check_open()
        check_session_id(session_id)
        state = SessionState(session_id, residency=residency)
        store = self.backend.open_session(session_id, create=True)
        assert store is not None
        session = Session(self, store, state)
        try:
            operations.run(
                operations.open_session(
                    self, session, store, plugin_options=plugin_options, parent_session_id=parent_session_id
                )
            )
        except BaseException:
            store.close()
            raise
        self._sessions.append(session)
        return session

    def sessions(self) -> list[SessionInfo]:
        """Every stored session, for pickers."""
        self._check_open()
        return self.backend.list_sessions()

    def delete(self, session_id: str) -> bool:
        """Delete a session and everything it owns; True if it existed."""
        self._check_open()
        for session in list(self._sessions):
            if session.session_id == session_id:
                session.close()
        return self.backend.delete_session(session_id)

    def gc(self) -> GcReport:
        """Delete every blob no session head references."""
        self._check_open()
        return self.backend.gc()

    def apply_retention(self, dry_run: bool = False) -> RetentionReport:
        """Enforce ``[retention]`` (see :mod:`lash.retention`); no section, nothing happens.

        A dry run reports what would be deleted and changes nothing.
        """
        self._check_open()
        return self.retention(dry_run)

    def usage_of_children(self, session_id: str) -> UsageReport:
        """Committed usage of every descendant of ``session_id`` (children, their children, ...)."""
        self._check_open()
        return operations.run(operations.usage_of_children(self.backend, session_id))

    def close(self) -> None:
        """Close every open session and the backend."""
        if self._closed:
            return
        self._closed = True
        for session in list(self._sessions):
            session.close()
        self.backend.close()

    def _forget(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.remove(session)


def open(
    config: LashConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    plugins: Iterable[object] = (),
) -> Lash:
    """Open lash with ``config`` (see :mod:`lash.config` for the lookup order).

    ``plugins`` are extra plugin objects registered in-process, after the installed ones.
    """
    return Lash(load_config(config), plugins=plugins)


__all__ = ["Lash", "LashCore", "LashError", "open"]
