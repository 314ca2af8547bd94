"""SDK items ↔ lash message bodies.

Every item the SDK hands to a session (a ``TResponseInputItem`` dict: a message, a tool call,
a tool output, a reasoning item, ...) becomes the body of one lash ``message`` node. Message
items already carry ``role`` and ``content`` and are stored exactly as given. Other items get
the two keys lash needs to show and compact them — ``role`` (``"tool"`` plus ``tool_call_id``
for a tool output, so compaction never keeps an output without its call; else the item's
``type``) and a short readable ``content`` preview — and :data:`SYNTHESIZED` lists the keys
added, so :func:`to_item` gives back exactly the item the SDK gave.

Items are normalised through JSON on the way in, like the SDK's own ``SQLiteSession``: both
sessions return the same values, and an item JSON cannot encode is refused before anything
is recorded.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import lash

SYNTHESIZED = "lash_synthesized"
"""Body key listing the keys this adapter added to an item (absent when it added none)."""

PREVIEW_CHARS = 200


def to_bodies(items: Sequence[Any]) -> list[dict[str, Any]]:
    """The node bodies of ``items``; raises :class:`lash.SerializationError` for any item that cannot be stored.

    Either every item is encodable and all bodies are returned, or none is recorded.
    """
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise lash.SerializationError(f"add_items() takes a list of items, not {type(items).__name__}")
    return [_to_body(index, item) for index, item in enumerate(items)]


def _to_body(index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise lash.SerializationError(f"item {index} is a {type(item).__name__}, not a dict (TResponseInputItem)")
    if SYNTHESIZED in item:
        raise lash.SerializationError(f"item {index} has the key {SYNTHESIZED!r}, which LashSession reserves")
    try:
        body = json.loads(json.dumps(item))
    except (TypeError, ValueError) as exc:
        kind = item.get("type") or item.get("role") or "item"
        raise lash.SerializationError(f"item {index} ({kind}) cannot be stored as JSON: {exc}") from exc
    added: list[str] = []
    if "role" not in body:
        if _is_tool_output(body):
            body["role"] = "tool"
            added.append("role")
            if "tool_call_id" not in body:
                body["tool_call_id"] = body["call_id"]
                added.append("tool_call_id")
        else:
            body["role"] = str(body.get("type") or "item")
            added.append("role")
    if "content" not in body:
        body["content"] = _preview(body)
        added.append("content")
    if added:
        body[SYNTHESIZED] = added
    return body


def to_item(body: Any) -> dict[str, Any]:
    """The SDK item a node body holds (a copy the caller may change)."""
    if not isinstance(body, dict):
        raise lash.CorruptRecordError("OpenAI Agents item", f"a message body is a {type(body).__name__}, not a dict")
    item = copy.deepcopy(body)
    for key in item.pop(SYNTHESIZED, ()):
        item.pop(key, None)
    return item


def is_user_message(item: Mapping[str, Any]) -> bool:
    """A user turn starts here (the rule of the SDK's ``AdvancedSQLiteSession``)."""
    return item.get("role") == "user"


def _is_tool_output(item: Mapping[str, Any]) -> bool:
    return str(item.get("type", "")).endswith("_output") and isinstance(item.get("call_id"), str)


def _preview(item: Mapping[str, Any]) -> str:
    """A one-look summary of an item without text content (what ``lash show`` prints)."""
    kind = item.get("type")
    if kind == "function_call":
        text = f"{item.get('name', '?')}({item.get('arguments', '')})"
    elif _is_tool_output(item):
        output = item.get("output")
        text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    elif kind == "reasoning":
        text = " ".join(str(part.get("text", "")) for part in item.get("summary") or () if isinstance(part, dict))
    else:
        text = json.dumps({k: v for k, v in item.items() if k not in ("role", "type")}, ensure_ascii=False)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
