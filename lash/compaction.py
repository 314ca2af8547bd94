"""Compaction: the contract strategies implement, and the built-in ``keep-recent``.

A compactor turns the messages of the current agent frame into the seed messages of a new
frame. lash keeps the full history in the graph; only what the model sees shrinks. This
module is itself a lash plugin: ``keep-recent`` is registered through
``lash_register_compactors`` exactly as a third-party strategy would be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs

from lash.hookspecs import hookimpl
from lash.model import LedgerEntry, SessionConfig
from lash.plugins import from_options


@attrs.frozen
class CompactionContext:
    """What a compactor sees: the model-visible messages of the current frame (read-only)."""

    session_id: str
    messages: tuple[dict[str, Any], ...]
    instructions: str | None
    usage: tuple[LedgerEntry, ...]
    config: SessionConfig


@attrs.frozen
class CompactionResult:
    """The message bodies that open the new frame (a summary, the recent turns kept)."""

    seed_messages: list[dict[str, Any]]
    reason: str = "compaction"


@runtime_checkable
class Compactor(Protocol):
    """A compaction strategy."""

    def compact(self, ctx: CompactionContext) -> CompactionResult | None:
        """The new frame's seed, or None when there is nothing to compact."""
        ...


@attrs.frozen
class KeepRecent:
    """Keep the last ``keep_last`` messages (and any leading system message); no model call.

    The window never opens on a tool result: it widens back to the assistant message that
    made the call, because providers reject a tool result whose call is missing.
    """

    keep_last: int = attrs.field(default=20, validator=attrs.validators.ge(1))
    keep_system: bool = True

    def compact(self, ctx: CompactionContext) -> CompactionResult | None:
        messages = list(ctx.messages)
        system = [m for m in messages[:1] if self.keep_system and m.get("role") == "system"]
        rest = messages[len(system) :]
        start = len(rest) - self.keep_last
        while start > 0 and is_tool_result(rest[start]):
            start -= 1
        if start <= 0:
            return None
        return CompactionResult(seed_messages=[*system, *rest[start:]])


def is_tool_result(message: dict[str, Any]) -> bool:
    """Whether ``message`` answers a tool call (OpenAI ``role: tool``, or Anthropic ``tool_result`` parts)."""
    if message.get("role") == "tool" or "tool_call_id" in message:
        return True
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") == "tool_result" for part in content
    )


@hookimpl
def lash_register_compactors(register: Callable[..., None]) -> None:
    register("keep-recent", from_options(KeepRecent))
