"""LangGraph's own checkpointer conformance suite (langgraph-checkpoint-conformance) against LashSaver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from lash_langgraph import LashSaver

from .conftest import ConfigFactory


def test_every_base_and_extended_capability_passes(lash_config: ConfigFactory) -> None:
    @checkpointer_test(name="LashSaver")
    async def fresh_saver() -> AsyncIterator[LashSaver]:
        saver = LashSaver.from_config(lash_config())
        yield saver
        saver.close()

    report = asyncio.run(validate(fresh_saver))

    results = {cap.value: report.results.get(cap.value) for cap in ALL_CAPABILITIES}
    failures = {
        name: (result.failures if result else "not run")
        for name, result in results.items()
        if result is None or not result.detected or not result.passed
    }
    assert not failures, failures
    assert len(results) == 8
    assert sum(r.tests_passed for r in results.values() if r) >= 80
