"""LangGraph's own checkpointer conformance suite (langgraph-checkpoint-conformance) against LashSaver.

The suite calls only the ``a*`` methods. Given a ``lash.aio`` handle and nothing else, the
saver serves them on lash.aio; :class:`SyncMethods`, given a ``lash.Lash``, routes them to
the sync methods, so that the suite checks the sync face too. The async face runs on every
backend, the sync face on memory and SQLite: on sqlite+s3 it makes the same lash calls, and
``test_saver`` puts it through that backend's blob store and GC.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from lash_langgraph import LashSaver

import lash
import lash.aio
from lash.testing.backends import backend_config


class SyncMethods(LashSaver):
    """A LashSaver whose ``a*`` methods call its sync methods (the suite has no sync driver)."""

    async def aget_tuple(self, config: Any) -> Any:
        return self.get_tuple(config)

    async def alist(self, config: Any, **options: Any) -> AsyncIterator[Any]:
        for found in self.list(config, **options):
            yield found

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.copy_thread(source_thread_id, target_thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.delete_for_runs(run_ids)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.prune(thread_ids, strategy=strategy)


@pytest.mark.parametrize(
    ("face", "backend"),
    [
        ("async", "memory"),
        ("async", "sqlite"),
        ("async", "sqlite+s3"),
        ("async", "postgres"),
        ("sync", "memory"),
        ("sync", "sqlite"),
    ],
)
def test_every_base_and_extended_capability_passes(face: str, backend: str, request: pytest.FixtureRequest) -> None:
    make_config = backend_config(backend, request)

    @checkpointer_test(name=f"LashSaver ({face} methods, {backend})")
    async def fresh_saver() -> AsyncIterator[LashSaver]:
        config = make_config()
        if face == "async":  # only a lash.aio handle: the a* methods cannot fall back on sync lash
            async with lash.aio.open(config) as handle:
                saver = LashSaver(handle)
                yield saver
                await saver.aclose()
        else:
            with lash.open(config) as handle:
                yield SyncMethods(handle)

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
