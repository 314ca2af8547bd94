"""What "the same session" means to the CLI: every part a resumed agent relies on.

``lash demo`` compares a session with its resumed copy, ``lash import`` and ``lash migrate``
compare what they wrote with what they read. Each part is compared on its own so that a
mismatch names what differs (``graph``, ``ledger``, ...).
"""

from __future__ import annotations

from typing import Any

from lash.model import LedgerEntry, SessionRead
from lash.session import Session


def _ledger(entries: tuple[LedgerEntry, ...]) -> dict[tuple[str, str], Any]:
    return {entry.key: entry.usage for entry in entries}


def of_session(session: Session) -> dict[str, Any]:
    """The parts of a live session, as an agent loop sees them after resuming."""
    return {
        "messages": session.messages(),
        "graph": (list(session.graph.nodes.values()), session.graph.leaf_node_id),
        "frames": (session.frames, session.current_frame.frame_id),
        "tools": session.tools.state(),
        "ledger": _ledger(session.usage_report().entries),
        "execution state": session.execution_state,
        "turn state": session.turn_state,
        "config": session.config,
    }


def of_read(read: SessionRead) -> dict[str, Any]:
    """The parts of a committed session as a store returns them (revision excluded)."""
    checkpoint = read.checkpoint
    return {
        "graph": (list(read.graph.nodes.values()), read.graph.leaf_node_id),
        "frames": (read.agent_frames, read.current_agent_frame_id),
        "tools": checkpoint.tool_state,
        "plugin snapshot": None if checkpoint.plugin_snapshot is None else checkpoint.plugin_snapshot.entries,
        "ledger": _ledger(read.token_ledger),
        "execution state": checkpoint.execution_state,
        "turn state": checkpoint.turn_state,
        "config": read.config,
    }


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Names of the parts that differ (empty when equal)."""
    return [key for key in expected if expected[key] != actual.get(key)]
