"""The async driver of :mod:`lash.operations`, and what a cancellation does to one.

A storage call that has started always runs to its end: a worker thread cannot be
interrupted, and a native async call cut off mid-way would leave the session unsure
whether its commit landed. So when the awaiting task is cancelled, the driver keeps
waiting for the call in flight, hands its result (or error) to the operation so that
the session adopts what the store now holds, and only then raises
:class:`asyncio.CancelledError`, before the next storage call. A cancelled commit
therefore leaves the head at the old or the new revision, never between, and the
session knows which: a later ``commit()`` just works. If the call failed (say with
:class:`~lash.HeadRevisionConflict`), the task still raises ``CancelledError``, with that
error as its ``__cause__``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from concurrent.futures import Executor
from typing import Any, TypeVar

from lash.operations import Call, Offload, Operation, Request

T = TypeVar("T")


async def drive(operation: Operation[T], executor: Executor) -> T:
    """Run ``operation``, awaiting each storage call; blocking work goes to ``executor``."""
    outcome: Any = None
    error: BaseException | None = None
    cancelled: asyncio.CancelledError | None = None
    delivered = False
    while True:
        try:
            request = operation.send(outcome) if error is None else operation.throw(error)
        except StopIteration as done:
            if cancelled is not None:
                raise cancelled from None
            return done.value
        except Exception as exc:  # a cancelled task raises CancelledError; the error it met is its cause
            if cancelled is not None:
                raise cancelled from exc
            raise
        if cancelled is not None and not delivered:
            # Cancelled during the last call, whose result the operation has now adopted:
            # stop before the next call (an operation may still clean up, e.g. close a store).
            delivered = True
            outcome, error = None, cancelled
            continue
        outcome, error, interrupted = await settle(start(request, executor))
        cancelled = cancelled or interrupted


def start(request: Request, executor: Executor) -> Awaitable[Any]:
    """The awaitable that performs ``request``: an async store call, or blocking work in ``executor``."""
    if isinstance(request, Offload):
        return asyncio.get_running_loop().run_in_executor(executor, request.perform)
    assert isinstance(request, Call)
    return request.perform()


async def settle(call: Awaitable[T]) -> tuple[T | None, Exception | None, asyncio.CancelledError | None]:
    """Await ``call`` to its end even through cancellations: ``(result, error, cancellation)``.

    The call is shielded; a cancellation of the awaiting task is remembered and returned
    for the caller to raise once it has dealt with the result.
    """
    future = asyncio.ensure_future(call)
    interrupted: asyncio.CancelledError | None = None
    while True:
        try:
            return await asyncio.shield(future), None, interrupted
        except asyncio.CancelledError as exc:
            if future.cancelled():  # the call itself was cancelled (its pool shut down): it never ran
                raise
            interrupted = exc
        except Exception as exc:
            return None, exc, interrupted
