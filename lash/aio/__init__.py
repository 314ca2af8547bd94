"""``lash.aio``: the runtime API (DESIGN §6) with awaitable storage calls, for asyncio agent loops.

::

    async with lash.aio.open(config) as handle:
        session = await handle.session("support-42")
        session.append_message("user", "Where is my order?")  # recording stays a plain call
        await session.commit()

Same names as the synchronous API: ``await handle.session(id)``, ``sessions()``,
``delete(id)``, ``gc()``, ``usage_of_children(id)``; ``await session.commit()``,
``compact()``, ``refresh()``, ``spawn_child(id)``, ``prune()``, ``meta()``, ``close()``,
and ``load_path(node_id)`` before ``checkout()`` of a node residency left in storage.

One implementation, two faces: every multi-step operation is a generator in
:mod:`lash.operations` that yields storage calls; :class:`lash.Session` answers them with
plain calls, :class:`lash.aio.Session` with ``await`` (psycopg 3's design). A backend with a
native :class:`~lash.store.AsyncBackend` (``backend.async_backend(executor)``) is awaited directly;
any other runs in the handle's bounded worker pool (``max_workers``), never on the
event-loop thread. Only the standard library's asyncio is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lash.aio.driver import settle
from lash.aio.runtime import ConfigSource, Lash
from lash.aio.session import Session
from lash.aio.threaded import ThreadedBackend, ThreadedSessionStore, async_backend
from lash.config import load_config
from lash.errors import AsyncUsageError, LashError
from lash.runtime import LashCore


class Opening:
    """What :func:`open` returns: ``async with`` it, or ``await`` it for a handle you close yourself."""

    def __init__(self, config: ConfigSource, plugins: Iterable[object], max_workers: int | None) -> None:
        self._config = config
        self._plugins = tuple(plugins)
        self._max_workers = max_workers
        self._handle: Lash | None = None

    def __await__(self) -> Generator[Any, None, Lash]:
        return self._open().__await__()

    async def __aenter__(self) -> Lash:
        self._handle = await self._open()
        return self._handle

    async def __aexit__(self, *exc: object) -> None:
        if self._handle is not None:
            await self._handle.close()

    def __enter__(self) -> None:
        raise AsyncUsageError("lash.aio.open() is an async context manager: use `async with lash.aio.open(...)`")

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ always raises
        pass

    async def _open(self) -> Lash:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="lash-aio")
        built = loop.run_in_executor(executor, lambda: LashCore(load_config(self._config), plugins=self._plugins))
        core, error, cancelled = await settle(built)
        if error is not None or cancelled is not None:
            if core is not None:
                await settle(loop.run_in_executor(executor, core.backend.close))
            executor.shutdown(wait=False)
            raise error or cancelled  # type: ignore[misc]
        assert core is not None
        try:
            return Lash(core, executor, loop)
        except BaseException:
            await settle(loop.run_in_executor(executor, core.backend.close))
            executor.shutdown(wait=False)
            raise


def open(config: ConfigSource = None, *, plugins: Iterable[object] = (), max_workers: int | None = None) -> Opening:
    """Open lash for asyncio: ``async with lash.aio.open(config) as handle``.

    ``config`` and ``plugins`` are those of :func:`lash.open`. ``max_workers`` bounds the
    worker pool that runs blocking work (default: ``concurrent.futures``' own,
    ``min(32, cpu_count + 4)``). Must be called inside a running event loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise AsyncUsageError(
            "lash.aio.open() needs a running event loop: call it inside an async function "
            "(`async with lash.aio.open(...) as handle`); synchronous code uses lash.open()"
        ) from None
    if max_workers is not None and (type(max_workers) is not int or max_workers < 1):
        raise LashError(f"lash.aio.open(): max_workers must be a positive int or None, not {max_workers!r}")
    return Opening(config, plugins, max_workers)


__all__ = ["Lash", "Opening", "Session", "ThreadedBackend", "ThreadedSessionStore", "async_backend", "open"]
