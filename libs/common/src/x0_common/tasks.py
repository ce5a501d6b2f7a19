"""Background tasks: the one way the services stop theirs."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has ended.

    Waiting matters: a stopped service closes the clients the task still uses, so the
    task must be gone first. Its ``CancelledError`` is the expected way out.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
