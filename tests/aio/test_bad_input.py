"""Misusing lash.aio gets a clear lash error, and nothing stored changes."""

from __future__ import annotations

import asyncio

import pytest

import lash
import lash.aio


def test_open_outside_a_running_event_loop_is_refused(config):
    with pytest.raises(lash.AsyncUsageError, match=r"needs a running event loop.*lash\.open"):
        lash.aio.open(config)


def test_plain_with_instead_of_async_with_is_refused(config):
    async def scenario() -> None:
        with pytest.raises(lash.AsyncUsageError, match="async with"), lash.aio.open(config):
            pass

    asyncio.run(scenario())


def test_handle_used_from_another_event_loop_is_refused(config):
    async def open_handle() -> lash.aio.Lash:
        return await lash.aio.open(config)

    handle = asyncio.run(open_handle())

    async def use() -> None:
        with pytest.raises(lash.AsyncUsageError, match="another event loop"):
            await handle.session("s")

    asyncio.run(use())
    handle._executor.shutdown()
    handle.backend.close()


def test_second_storage_call_while_one_runs_is_session_busy_and_the_first_one_commits(config):
    async def scenario() -> None:
        async with lash.aio.open(config) as handle:
            session = await handle.session("s")
            session.append_message("user", "once")
            first, second = await asyncio.gather(session.commit(), session.refresh(), return_exceptions=True)
            assert isinstance(first, lash.CommitResult) and first.head_revision == 1
            assert isinstance(second, lash.SessionBusyError)
            assert (second.running, second.attempted) == ("commit", "refresh")
            assert "'s' is busy" in str(second)
            assert (await session.commit()).head_revision == 2

    asyncio.run(scenario())


def test_closed_session_and_closed_handle_are_refused(config):
    async def scenario() -> None:
        async with lash.aio.open(config) as handle:
            session = await handle.session("s")
            session.append_message("user", "kept")
            await session.commit()
            session.append_message("user", "discarded")
            await session.close()
            with pytest.raises(lash.SessionClosedError, match="'s' is closed"):
                await session.commit()
            with pytest.raises(lash.SessionClosedError):
                session.append_message("user", "late")
        with pytest.raises(lash.SessionClosedError, match="handle is closed"):
            await handle.session("s")
        with pytest.raises(lash.SessionClosedError, match="handle is closed"):
            await handle.sessions()
        async with lash.aio.open(config) as handle:
            assert [m["content"] for m in (await handle.session("s")).messages()] == ["kept"]

    asyncio.run(scenario())


def test_invalid_arguments_are_lash_errors(config):
    async def scenario() -> None:
        with pytest.raises(lash.LashError, match="max_workers"):
            lash.aio.open(config, max_workers=0)
        async with lash.aio.open(config) as handle:
            with pytest.raises(lash.InvalidSessionId):
                await handle.session("")
            session = await handle.session("s")
            with pytest.raises(lash.LashError, match="usage_of_children"):
                session.usage_report(include_children=True)
            with pytest.raises(lash.InvalidGraphError, match="no-such-node"):
                session.checkout("no-such-node")

    asyncio.run(scenario())


def test_checkout_of_a_node_left_in_storage_names_load_path(config):
    async def scenario() -> None:
        async with lash.aio.open(config) as handle:
            session = await handle.session("s")
            root = session.append_message("user", "root")
            abandoned = session.append_message("assistant", "abandoned")
            await session.commit()
            session.checkout(root)
            session.append_message("assistant", "kept")
            await session.commit()
        async with lash.aio.open(config) as handle:
            session = await handle.session("s", residency="active_path")
            with pytest.raises(lash.InvalidGraphError, match="load_path"):
                session.checkout(abandoned)

    asyncio.run(scenario())
