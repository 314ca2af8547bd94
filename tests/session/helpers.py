"""Test plugins and helpers shared by the session tests and the worker processes they start.

Loaded under the fixed module name ``session_helpers`` (by ``conftest.py`` and by
``python helpers.py ...`` in a subprocess), so in-process plugin objects get the same
stable plugin name in every process and their stored snapshots are found on resume.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lash
from lash import codec

MODULE_NAME = "session_helpers"


class Notes:
    """A plugin with state: a list of notes, snapshotted and restored, plus one tool per note."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.restored: list[Any] = []

    @lash.hookimpl
    def lash_snapshot_session(self, session: lash.Session) -> Any:
        return {"notes": self.notes} if self.notes else None

    @lash.hookimpl
    def lash_restore_session(self, session: lash.Session, snapshot: Any) -> None:
        self.restored.append(snapshot)
        self.notes = list(snapshot["notes"])

    @lash.hookimpl
    def lash_session_tools(self, session: lash.Session) -> list[dict[str, Any]]:
        return [{"name": f"note_{n}", "description": f"recall note {n}"} for n in self.notes]


class Protocol:
    """A materialization plugin: sets protocol turn options from ``plugin_options``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], bool]] = []

    @lash.hookimpl
    def lash_materialize_session(
        self, session: lash.Session, plugin_options: dict[str, Any], is_root_session: bool
    ) -> None:
        self.calls.append((session.session_id, dict(plugin_options), is_root_session))
        session.set_protocol_turn_options(protocol=plugin_options.get("protocol", "chat"), root=is_root_session)


def describe(session: lash.Session) -> dict[str, Any]:
    """Everything a resume must reproduce, as plain JSON-able data."""
    snapshot = session.plugin_snapshot
    return json.loads(
        json.dumps(
            {
                "head_revision": session.head_revision,
                "nodes": [codec.to_plain(n) for n in session.graph.nodes.values()],
                "leaf": session.graph.leaf_node_id,
                "frames": [codec.to_plain(f) for f in session.frames],
                "current_frame": session.current_frame.frame_id,
                "config": codec.to_plain(session.config),
                "turn_state": codec.to_plain(session.turn_state),
                "tools": codec.to_plain(session.tools.state()),
                "plugin_snapshot": codec.to_plain(snapshot) if snapshot else None,
                "execution_state": session.execution_state.hex() if session.execution_state else None,
                "ledger": [codec.to_plain(e) for e in session.usage_report().entries],
                "messages": session.messages(),
            }
        )
    )


def stored_node_count(session: lash.Session) -> int:
    """Visible node rows in the backend's storage, read below the store's own methods."""
    with session.store.storage.transaction(write=False) as txn:  # type: ignore[attr-defined]
        return len(txn.read_all_nodes())


def blob_puts(session: lash.Session, kind: str) -> list[bytes]:
    """Wrap the session's blob store; returns the list of ``kind`` blobs it is asked to write."""
    blobs = session.store.blobs
    original = blobs.put
    puts: list[bytes] = []

    def put(data: bytes, blob_kind: str, hints: Any = ()) -> Any:
        if blob_kind == kind:
            puts.append(data)
        return original(data, blob_kind, hints)

    blobs.put = put
    original_many = getattr(blobs, "put_many", None)  # a commit writes its blobs in one put_many
    if original_many is not None:

        def put_many(writes: Any) -> Any:
            puts.extend(w.data for w in writes if w.kind == kind)
            return original_many(writes)

        blobs.put_many = put_many
    return puts


def load_as_module(path: Path = Path(__file__)) -> Any:
    """This file imported as :data:`MODULE_NAME` (once per process)."""
    if MODULE_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[MODULE_NAME]


# --- what a worker process does --------------------------------------------------------


def _describe_command(config: dict[str, Any], session_id: str, residency: str, plugin_options: str) -> None:
    with lash.open(config, plugins=[Notes(), Protocol()]) as handle:
        session = handle.session(session_id, residency=residency, plugin_options=json.loads(plugin_options))  # type: ignore[arg-type]
        print(json.dumps(describe(session)))


def _append_commit_command(config: dict[str, Any], session_id: str, text: str) -> None:
    with lash.open(config) as handle:
        session = handle.session(session_id)
        session.append_message("user", text)
        session.record_usage("worker", "m", lash.TokenUsage(output_tokens=1))
        print(json.dumps({"head_revision": session.commit().head_revision}))


COMMANDS: dict[str, Callable[..., None]] = {"describe": _describe_command, "append-commit": _append_commit_command}


def main(argv: list[str]) -> None:
    command, config_file, *args = argv
    COMMANDS[command](json.loads(Path(config_file).read_text()), *args)


if __name__ == "__main__":
    load_as_module().main(sys.argv[1:])
