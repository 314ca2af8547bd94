"""lash-summarize: fold older messages into one deterministic summary note.

A third-party compaction strategy for lash, registered as ``summarize`` through the
``lash`` entry point exactly as any other distribution would do it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

import lash
from lash.plugins import from_options

__all__ = ["Summarize", "first_sentence"]

SUMMARY_PREFIX = "Summary of the earlier conversation:"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def first_sentence(content: Any, max_chars: int) -> str:
    """The first sentence of a message's content, cut to ``max_chars`` (with an ellipsis)."""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        content = " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    text = " ".join(str(content).split())
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0]
    return sentence if len(sentence) <= max_chars else sentence[: max_chars - 1].rstrip() + "…"


@attrs.frozen
class Summarize:
    """Replace all but the last ``keep_last`` messages by one summary note; no model call.

    A leading system message is kept; a summary note from an earlier compaction is folded
    into the new one, so repeated compactions keep a single, growing note.
    """

    keep_last: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    max_chars: int = attrs.field(default=120, validator=attrs.validators.ge(10))

    def compact(self, ctx: lash.CompactionContext) -> lash.CompactionResult | None:
        messages = list(ctx.messages)
        system = [m for m in messages[:1] if m.get("role") == "system" and not _is_note(m)]
        previous = [m for m in messages[len(system) : len(system) + 1] if _is_note(m)]
        rest = messages[len(system) + len(previous) :]
        if len(rest) <= self.keep_last:
            return None
        older, recent = rest[: -self.keep_last], rest[-self.keep_last :]
        lines = [line for m in previous for line in m["content"].splitlines()[1:] if line.startswith("- ")]
        lines += [f"- {m.get('role', '?')}: {first_sentence(m.get('content', ''), self.max_chars)}" for m in older]
        focus = [f"(focus: {ctx.instructions})"] if ctx.instructions else []
        summarized = sum(m["summarized"] for m in previous) + len(older)
        note = {"role": "system", "content": "\n".join([SUMMARY_PREFIX, *focus, *lines]), "summarized": summarized}
        return lash.CompactionResult(seed_messages=[*system, note, *recent])


def _is_note(message: dict[str, Any]) -> bool:
    """True for a summary note an earlier ``summarize`` compaction wrote (it is folded again)."""
    return isinstance(message.get("summarized"), int) and str(message.get("content", "")).startswith(SUMMARY_PREFIX)


@lash.hookimpl
def lash_register_compactors(register: Callable[..., None]) -> None:
    register("summarize", from_options(Summarize))
