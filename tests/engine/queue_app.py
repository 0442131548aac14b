"""A plain ASGI app for the queue-time test: one model slot (asyncio.Semaphore(1)) that each request
holds for QUEUE_HOLD seconds, so that the n-th of several concurrent requests waits (n-1) holds."""

from __future__ import annotations

import asyncio
import json
import os
from time import perf_counter
from typing import Any

import llmobs

HOLD = float(os.environ.get("QUEUE_HOLD", "0.2"))
slot: asyncio.Semaphore | None = None


@llmobs.monitor_inference(model="m", operation="chat")
async def generate() -> dict[str, float]:
    """Holds the slot for HOLD; returns when (perf_counter, as llmobs) it began, got the slot, had
    marked the start, and let go: what the test holds the exported times against."""
    assert slot is not None
    entered = perf_counter()
    async with slot:
        acquired = perf_counter()
        llmobs.current_inference().mark_started()
        marked = perf_counter()
        await asyncio.sleep(HOLD)
        held = perf_counter()
    return {"entered": entered, "acquired": acquired, "marked": marked, "held": held}


async def timed() -> bytes:
    """One call of ``generate``, with when it was called and when it returned, as JSON."""
    before = perf_counter()
    times = await generate()
    return json.dumps({**times, "before": before, "after": perf_counter()}).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global slot
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            llmobs.init(service_name="queue-test")
            slot = asyncio.Semaphore(1)
            await send({"type": "lifespan.startup.complete"})
        llmobs.shutdown()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b"ok" if scope["path"] == "/health" else await timed()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
