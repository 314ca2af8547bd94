"""A conversation stops, resumes in a fresh process from the same lash SQLite directory, and has the same history."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agents import SQLiteSession
from lash_openai_agents import LashSession

from .scenario import TURNS, play

SCENARIO = Path(__file__).with_name("scenario.py")


def test_conversation_resumes_in_a_fresh_process_with_identical_history(sqlite_config: dict[str, Any]) -> None:
    async def first_half() -> list[Any]:
        async with LashSession("trip", config=sqlite_config) as session:
            await play(session, TURNS[:2])
            return await session.get_items()

    async def reference() -> list[Any]:
        session = SQLiteSession("trip")
        await play(session, TURNS)
        return await session.get_items()

    before = asyncio.run(first_half())
    resumed = subprocess.run(
        [sys.executable, str(SCENARIO), json.dumps(sqlite_config), "trip", "2", str(len(TURNS))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    found, after = (json.loads(line) for line in resumed.stdout.splitlines())
    assert found == before, "the fresh process sees exactly the history the first one stored"
    assert after == asyncio.run(reference()), "and continuing it gives what one SQLiteSession run gives"
