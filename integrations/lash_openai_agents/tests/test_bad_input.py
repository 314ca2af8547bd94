"""Bad input: clear lash errors, and nothing stored half-way."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from lash_openai_agents import FORMAT_VERSION, AdapterFormatError, LashSession, plugin

import lash

from .conftest import ConfigFactory

GOOD = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]


@pytest.mark.parametrize("session_id", ["", "a\x00b", "x" * 1025])
def test_a_session_id_lash_cannot_store_is_refused_at_once(session_id: str) -> None:
    with pytest.raises(lash.InvalidSessionId):
        LashSession(session_id)


def test_an_item_that_cannot_be_encoded_stores_none_of_its_batch(lash_config: ConfigFactory) -> None:
    async def store() -> None:
        async with LashSession("s", config=lash_config()) as session:
            await session.add_items(GOOD)
            revision = session.lash_session.head_revision
            bad: list[Any] = [{"role": "user", "content": "fine"}, {"role": "user", "content": object()}]
            with pytest.raises(lash.SerializationError, match=r"item 1 \(user\) cannot be stored as JSON"):
                await session.add_items(bad)
            with pytest.raises(lash.SerializationError, match="item 0 is a str"):
                await session.add_items(["not an item"])  # type: ignore[list-item]
            with pytest.raises(lash.SerializationError, match="reserves"):
                await session.add_items([{"role": "user", "content": "x", "lash_synthesized": ["role"]}])
            assert await session.get_items() == GOOD
            assert session.lash_session.head_revision == revision

    asyncio.run(store())


def test_a_session_written_by_a_newer_adapter_is_refused_and_left_alone(
    sqlite_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def write(items: list[Any]) -> None:
        async with LashSession("s", config=sqlite_config) as session:
            await session.add_items(items)

    with monkeypatch.context() as newer:  # this adapter, one format later
        newer.setattr(plugin, "FORMAT_VERSION", FORMAT_VERSION + 1)
        asyncio.run(write(GOOD[:1]))

    async def use() -> None:
        async with LashSession("s", config=sqlite_config) as session:
            with pytest.raises(AdapterFormatError, match="newer lash-openai-agents") as error:
                await session.get_items()
            assert isinstance(error.value, lash.SchemaVersionError)
            with pytest.raises(AdapterFormatError):
                await session.add_items(GOOD)

    asyncio.run(use())
    with pytest.raises(AdapterFormatError), lash.open(sqlite_config) as handle:
        handle.session("s")  # plain lash refuses it too: the plugin checks on resume
    with lash.open({**sqlite_config, "plugins": {"disable": ["openai_agents"]}}) as handle:
        stored = handle.session("s")
        assert stored.head_revision == 1 and stored.messages() == GOOD[:1]


def test_the_format_version_is_stored_once_in_the_plugin_snapshot(sqlite_config: dict[str, Any]) -> None:
    async def store() -> None:
        async with LashSession("s", config=sqlite_config) as session:
            await session.add_items(GOOD[:1])
            await session.add_items(GOOD[1:])

    asyncio.run(store())
    with lash.open(sqlite_config) as handle:
        snapshot = handle.session("s").plugin_snapshot
    assert snapshot is not None and snapshot.entries["openai_agents"] == {"format": FORMAT_VERSION}
    assert snapshot.revision == 1, "an unchanged value is not written again"


def test_a_disabled_adapter_plugin_or_a_sync_handle_is_a_clear_error(sqlite_config: dict[str, Any]) -> None:
    async def use() -> None:
        config = {**sqlite_config, "plugins": {"disable": ["openai_agents"]}}
        async with LashSession("s", config=config) as session:
            with pytest.raises(lash.PluginError, match="openai_agents"):
                await session.get_items()

    asyncio.run(use())
    with lash.open(sqlite_config) as sync_handle, pytest.raises(TypeError, match=r"lash\.aio handle"):
        LashSession("s", sync_handle)  # type: ignore[arg-type]


def test_lash_loads_the_adapter_plugin_without_importing_the_sdk() -> None:
    probe = (
        "import sys, lash\n"
        "with lash.open({'store': {'backend': 'memory'}}) as handle:\n"
        "    assert handle.plugin_manager.pm.has_plugin('openai_agents')\n"
        "assert 'agents' not in sys.modules, 'lash.open() imported the Agents SDK'\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
