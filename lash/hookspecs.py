"""Every hook a lash plugin can implement.

A plugin is a module (or object) with functions decorated ``@lash.hookimpl`` whose names
match the specs below; it is found through the ``lash`` entry-point group, or passed to
``lash.open(plugins=[...])``. The ``lash_register_*`` hooks receive a ``register``
callback: call it once per thing you contribute. lash's own built-ins (the ``keep-recent``
compactor) are registered through these same hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from lash.session import Session

hookspec = pluggy.HookspecMarker("lash")
hookimpl = pluggy.HookimplMarker("lash")


@hookspec
def lash_register_backends(register: Callable[[str, Callable[[dict[str, Any]], Any]], None]) -> None:
    """Register storage backends.

    Called once when a :class:`lash.Lash` handle is opened. Call
    ``register(name, factory)`` per backend; ``factory(options)`` receives the
    ``[store] options`` table as a dict and returns a :class:`lash.store.Backend`.
    ``name`` is what users write in ``[store] backend``. Return value is ignored.
    """


@hookspec
def lash_register_blob_stores(register: Callable[[str, Callable[[dict[str, Any]], Any]], None]) -> None:
    """Register content-addressed blob stores.

    Called once when a handle is opened. Call ``register(name, factory)``;
    ``factory(options)`` receives the ``[blobs] options`` table and returns a
    :class:`lash.blobs.BlobStore`. Users select it with ``[blobs] backend = "<name>"``.
    Return value is ignored.
    """


@hookspec
def lash_register_compactors(register: Callable[[str, Callable[[dict[str, Any]], Any]], None]) -> None:
    """Register compaction strategies.

    Called once when a handle is opened. Call ``register(name, factory)``;
    ``factory(options)`` receives the ``[compaction] options`` table and returns an object
    with ``compact(ctx: CompactionContext) -> CompactionResult | None``. Users select it
    with ``[compaction] strategy = "<name>"``. Return value is ignored.
    """


@hookspec
def lash_register_key_providers(register: Callable[[str, Callable[[dict[str, Any]], Any]], None]) -> None:
    """Register key providers: where master keys for encryption at rest come from.

    Called once when a handle is opened. Call ``register(name, factory)``;
    ``factory(options)`` receives the ``[encryption] options`` table and returns a
    :class:`lash.keys.KeyProvider`: ``key_ids()`` (the ids it may supply) and
    ``load_key(key_id) -> bytes`` (32 raw bytes, or raise :class:`lash.KeyUnavailableError`).
    Users select it with ``[encryption] key_provider = "<name>"``; lash's ``env`` and
    ``file`` providers are registered through this hook, and a cloud KMS is one more
    plugin. Keys must never appear in the provider's repr or error messages. Return value
    is ignored.
    """


@hookspec
def lash_materialize_session(session: Session, plugin_options: dict[str, Any], is_root_session: bool) -> None:
    """Set up a session's protocol: runs when a root session is opened and a child is spawned.

    ``is_root_session`` is False for a child session, whether just made by
    ``Session.spawn_child()`` or reopened later with ``Lash.session(child_id)`` (its stored
    meta names the parent), and True otherwise. ``plugin_options`` is the dict the caller passed. Set
    protocol turn options with ``session.set_protocol_turn_options(...)``, register tools
    with ``session.tools.register(...)``, or append seed nodes. Return value is ignored.
    """


@hookspec
def lash_session_tools(session: Session) -> list[dict[str, Any]] | None:
    """Tool specs this plugin offers the model in ``session``.

    Called before each commit. Return a list of tool-spec dicts (each with a ``"name"``),
    or None to contribute nothing. The tool registry's ``generation`` increases only when
    the combined set of tools changes.
    """


@hookspec
def lash_snapshot_session(session: Session) -> Any:
    """This plugin's state in ``session``, to persist with the next commit.

    Called before each commit. Return any msgpack-able value, or None for "no state".
    Snapshots of all plugins are stored together as one ``plugin_snapshot`` blob keyed by
    plugin name, rewritten only when some plugin's value changed.
    """


@hookspec
def lash_restore_session(session: Session, snapshot: Any) -> None:
    """Restore the state this plugin returned from :func:`lash_snapshot_session`.

    Called when a session that has a stored snapshot for this plugin is resumed, with
    that value. Return value is ignored.
    """
