"""``lash.aio`` over Postgres is native: storage calls are awaited on the loop; a cut-off call writes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import random
from concurrent.futures import Future
from typing import Any

import pytest
from lash_postgres import PostgresBackend
from lash_postgres.aio import AsyncPostgresBackend
from lash_postgres.testing import PostgresServer

import lash
import lash.aio
from lash.aio.store import AsyncStandardSessionStore
from lash.keys import generate_key
from lash.model import Append, Commit, HydratedCheckpoint, Node
from lash.store_rules import BlobCalls
from lash.testing.builders import CONFIG, INITIAL_FRAME, message
from lash.testing.encryption import encrypt_if

from .test_integration import _blob_rows

CANCELLATION_RUNS = 40


def counting_submissions(handle: lash.aio.Lash) -> list[Any]:
    """Every function handed to the handle's worker pool from now on."""
    submitted: list[Any] = []
    submit = handle._executor.submit

    def counted(function: Any, *args: Any, **kwargs: Any) -> Future[Any]:
        submitted.append(getattr(function, "func", function))
        return submit(function, *args, **kwargs)

    handle._executor.submit = counted  # type: ignore[method-assign]
    return submitted


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_aio_postgres_never_hands_a_storage_call_to_a_worker_thread(
    config: dict[str, Any], encrypted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if encrypted:
        monkeypatch.setenv("LASH_MASTER_KEY", generate_key())
        config = {**config, "encryption": {"key_provider": "env"}}

    async def scenario() -> list[Any]:
        async with lash.aio.open(config) as handle:
            assert isinstance(handle.async_backend, AsyncPostgresBackend)
            submitted = counting_submissions(handle)
            session = await handle.session("native")
            for turn in range(3):
                session.append_message("user", f"question {turn}")
                session.tools.register({"name": f"tool_{turn}"})
                session.set_execution_state(bytes([turn]) * 5000)
                await session.commit()
            child = await session.spawn_child("native.child")
            child.append_message("user", "sub-task")
            await child.commit()
            await session.refresh()
            assert {info.session_id for info in await handle.sessions()} == {"native", "native.child"}
            assert await handle.delete("native.child") is True
            await handle.gc()
            reopened = await handle.session("native")
            assert reopened.execution_state == bytes([2]) * 5000
            assert [m["content"] for m in reopened.messages()] == ["question 0", "question 1", "question 2"]
            return list(submitted)  # closing the handle closes the sync backend's pool in the worker pool

    assert asyncio.run(scenario()) == []


def test_aio_postgres_with_s3_blobs_hands_only_blob_calls_to_the_worker_pool(
    fake_aws: Any, config: dict[str, Any], postgres_server: PostgresServer, store_options: dict[str, Any]
) -> None:
    config = {**config, "blobs": {"backend": "s3", "options": {"bucket": "lash-aio-blobs", "create_bucket": True}}}

    async def scenario() -> tuple[list[Any], Any]:
        async with lash.aio.open(config) as handle:
            assert isinstance(handle.async_backend, AsyncPostgresBackend)
            submitted = counting_submissions(handle)
            session = await handle.session("blobs-on-s3")
            session.append_message("user", "hello")
            session.set_execution_state(b"state " * 1000)
            await session.commit()
            reopened = await handle.session("blobs-on-s3")
            return list(submitted), reopened.execution_state

    submitted, state = asyncio.run(scenario())
    assert state == b"state " * 1000
    assert submitted and all(isinstance(getattr(call, "__self__", None), BlobCalls) for call in submitted)
    keys = fake_aws.list_objects_v2(Bucket="lash-aio-blobs").get("Contents", [])
    assert keys and _blob_rows(postgres_server, store_options["schema"]) == 0


def _commit(store: AsyncStandardSessionStore, revision: int | None, nodes: tuple[Node, ...], state: bytes) -> Commit:
    return Commit(
        session_id=store.session_id,
        expected_head_revision=revision,
        config=CONFIG,
        graph=Append(nodes, nodes[-1].node_id),
        checkpoint=HydratedCheckpoint(execution_state=state),
        agent_frames=(INITIAL_FRAME,),
        current_agent_frame_id=INITIAL_FRAME.frame_id,
    )


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_native_commit_cancelled_mid_transaction_rolls_back_and_frees_its_connection(
    make_backend: Any, encrypted: bool
) -> None:
    """Cancel the store's own coroutine (no lash.aio shield) at random awaits: the head is old or new."""
    backend: PostgresBackend = encrypt_if(encrypted, make_backend(pool_max=2))
    rng = random.Random(13)

    async def scenario() -> int | None:
        face = backend.async_backend(executor=None)  # type: ignore[arg-type]
        try:
            store = await face.open_session("cut")
            assert store is not None
            revision: int | None = None
            parent: str | None = None
            kept: list[str] = []
            for run in range(CANCELLATION_RUNS):
                node = message(f"n{run}", parent)
                task = asyncio.create_task(store.commit(_commit(store, revision, (node,), rng.randbytes(64))))
                await asyncio.sleep(rng.uniform(0, 0.004))  # a commit is a few round trips: cut anywhere in them
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                head = await store.load_head()
                stored = None if head is None else head.revision
                assert stored in (revision, (revision or 0) + 1), f"run {run}: head {stored} after {revision}"
                if stored != revision:
                    revision, parent = stored, node.node_id
                    kept.append(node.node_id)
            last = message("last", parent)  # no lock or connection was left behind: a plain commit goes through
            revision = (await store.commit(_commit(store, revision, (last,), b"done"))).head_revision
            read = await store.load_session()
            assert read is not None and list(read.graph.nodes) == [*kept, "last"]
            await store.close()
            return revision
        finally:
            await face.close()

    revision = asyncio.run(scenario())
    sync_store = backend.open_session("cut", create=False)
    assert sync_store is not None
    try:  # what the async face left is what the sync face reads
        head = sync_store.load_head()
        assert (head.revision if head else None) == revision
    finally:
        sync_store.close()
