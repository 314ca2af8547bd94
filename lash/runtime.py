"""``lash.open()`` and the :class:`Lash` handle: config, plugins, backend and compactor."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from lash import codec
from lash.blobs import BlobStore
from lash.compaction import Compactor
from lash.config import LashConfig, load_config
from lash.errors import ConfigError, LashError, PluginNotFound, SerializationError, SessionClosedError
from lash.model import ActivePath, CommitResult, GcReport, SessionInfo
from lash.plugins import PluginManager
from lash.session import Residency, Session, SessionState, UsageReport, load_committed, new_meta
from lash.store import Backend, check_session_id


class Lash:
    """An open lash: one plugin manager, one backend, one compactor. Use as a context manager."""

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
            self.compactor: Compactor = self._build(
                "compaction", self.plugin_manager.compactors, config.compaction.strategy, config.compaction.options
            )
        except BaseException:
            self.backend.close()
            raise
        self._sessions: list[Session] = []
        self._closed = False

    def _build(self, section: str, registry: Any, name: str, options: Mapping[str, Any]) -> Any:
        key = "strategy" if section == "compaction" else "backend"
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

    def __enter__(self) -> Lash:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lash backend={self.config.store.backend!r} source={self.config.source}>"

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
            read = load_committed(store, residency)
            if store.load_meta() is None:
                store.save_meta(new_meta(session_id, parent_session_id, os.getcwd()))
            if read is not None:
                state.apply_read(read)
                self._restore_plugins(session, read.checkpoint.plugin_snapshot)
            self.plugin_manager.hook.lash_materialize_session(
                session=session, plugin_options=dict(plugin_options or {}), is_root_session=parent_session_id is None
            )
            self._gather_plugin_tools(session)
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

    def usage_of_children(self, session_id: str) -> UsageReport:
        """Committed usage of every descendant of ``session_id`` (children, their children, ...)."""
        self._check_open()
        children: dict[str | None, list[str]] = {}
        for info in self.backend.list_sessions():
            children.setdefault(info.parent_session_id, []).append(info.session_id)
        report = UsageReport(())
        todo, seen = list(children.get(session_id, ())), {session_id}
        while todo:
            child_id = todo.pop()
            if child_id in seen:
                continue
            seen.add(child_id)
            todo.extend(children.get(child_id, ()))
            store = self.backend.open_session(child_id, create=False)
            if store is None:
                continue
            try:
                read = store.load_session(ActivePath())
            finally:
                store.close()
            if read is not None:
                report = report + UsageReport(read.token_ledger)
        return report

    def close(self) -> None:
        """Close every open session and the backend."""
        if self._closed:
            return
        self._closed = True
        for session in list(self._sessions):
            session.close()
        self.backend.close()

    # -- plugin plumbing used by Session ---------------------------------------------------

    def _forget(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.remove(session)

    def _restore_plugins(self, session: Session, snapshot: Any) -> None:
        if snapshot is None:
            return
        for impl in self.plugin_manager.hook.lash_restore_session.get_hookimpls():
            if impl.plugin_name in snapshot.entries:
                impl.function(session=session, snapshot=snapshot.entries[impl.plugin_name])

    def _gather_plugin_tools(self, session: Session) -> None:
        """Ask plugins which tools they offer now (on open and before each commit)."""
        hook = self.plugin_manager.hook
        session.tools.set_plugin_tools(
            spec for specs in hook.lash_session_tools(session=session) if specs for spec in specs
        )

    def _gather_plugin_state(self, session: Session) -> None:
        """Ask plugins for their tools and snapshots before a commit."""
        self._gather_plugin_tools(session)
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

    def _after_commit(self, session: Session, result: CommitResult) -> None:
        every = self.config.gc.auto_every_commits
        if every and result.head_revision % every == 0 and self.backend.blobs is None:
            session.store.gc_unreachable()


def open(
    config: LashConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    plugins: Iterable[object] = (),
) -> Lash:
    """Open lash with ``config`` (see :mod:`lash.config` for the lookup order).

    ``plugins`` are extra plugin objects registered in-process, after the installed ones.
    """
    return Lash(load_config(config), plugins=plugins)


__all__ = ["Lash", "LashError", "open"]
