"""The usage of one SDK run, as a per-turn record and as a lash ledger entry.

The SDK counts cached input inside ``input_tokens`` and reasoning inside ``output_tokens``;
lash's :class:`~lash.TokenUsage` keeps disjoint buckets (input, output, cache read, cache
write, reasoning) whose sum is the total. :func:`ledger_usage` converts, so ``lash usage``
totals equal the SDK's ``total_tokens``. The per-turn record keeps the SDK's own numbers and
detail dicts, shaped like the rows of ``AdvancedSQLiteSession.get_turn_usage``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from agents.models import get_default_model
from agents.result import RunResultBase
from agents.usage import Usage

import lash

COUNTS = ("requests", "input_tokens", "output_tokens", "total_tokens")
DETAILS = ("input_tokens_details", "output_tokens_details")


@attrs.frozen
class RunUsage:
    """What ``store_run_usage`` records: the ledger entry's key and counts, and the per-turn record."""

    agent: str
    model: str
    tokens: lash.TokenUsage
    record: dict[str, Any]


def run_usage(result: RunResultBase, model: str | None = None) -> RunUsage | None:
    """The usage of ``result`` (None when the run has none); ``model`` overrides the agent's model name."""
    usage = result.context_wrapper.usage
    if usage is None:
        return None
    agent = result.last_agent
    model_name = model or model_name_of(agent.model)
    record: dict[str, Any] = {
        "agent": agent.name,
        "model": model_name,
        **{key: int(getattr(usage, key) or 0) for key in COUNTS},
        **{key: _details(getattr(usage, key, None)) for key in DETAILS},
    }
    return RunUsage(agent.name, model_name, ledger_usage(usage), record)


def model_name_of(model: Any) -> str:
    """The name of an agent's ``model`` setting: a name, a ``Model`` object, or None (the SDK default)."""
    if model is None:
        return get_default_model()
    if isinstance(model, str):
        return model
    name = getattr(model, "model", None)
    return name if isinstance(name, str) and name else type(model).__name__


def ledger_usage(usage: Usage) -> lash.TokenUsage:
    cached = _count(usage.input_tokens_details, "cached_tokens")
    cache_write = _count(usage.input_tokens_details, "cache_write_tokens")
    reasoning = _count(usage.output_tokens_details, "reasoning_tokens")
    return lash.TokenUsage(
        input_tokens=max(0, (usage.input_tokens or 0) - cached - cache_write),
        output_tokens=max(0, (usage.output_tokens or 0) - reasoning),
        cache_read_input_tokens=cached,
        cache_write_input_tokens=cache_write,
        reasoning_output_tokens=reasoning,
    )


def total(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of per-turn records: counts add up, and so does each number of the detail dicts."""
    out: dict[str, Any] = {key: 0 for key in COUNTS}
    details: dict[str, dict[str, int | None]] = {key: {} for key in DETAILS}
    for record in records:
        for key in COUNTS:
            out[key] += record.get(key, 0)
        for key in DETAILS:
            for name, value in (record.get(key) or {}).items():
                before = details[key].get(name)
                details[key][name] = value if before is None else before + (value or 0)
    return {**out, **{key: value or None for key, value in details.items()}}


def _count(details: Any, name: str) -> int:
    return int(getattr(details, name, 0) or 0)


def _details(details: Any) -> dict[str, int | None] | None:
    """The SDK's detail object as the dict its own session stores (its numbers, and the fields left unset)."""
    if details is None:
        return None
    values = details.model_dump() if hasattr(details, "model_dump") else vars(details)
    return {name: value for name, value in values.items() if value is None or type(value) is int}
