"""A plain ASGI app for the queue-time test: one model slot (asyncio.Semaphore(1)) that each request
holds for QUEUE_HOLD seconds, so that the n-th of several concurrent requests waits (n-1) holds."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import llmobs

HOLD = float(os.environ.get("QUEUE_HOLD", "0.2"))
slot: asyncio.Semaphore | None = None


@llmobs.monitor_inference(model="m", operation="chat")
async def generate() -> str:
    assert slot is not None
    async with slot:
        llmobs.current_inference().mark_started()
        await asyncio.sleep(HOLD)
    return "done"


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
    body = b"ok" if scope["path"] == "/health" else (await generate()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
