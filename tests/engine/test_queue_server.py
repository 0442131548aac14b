"""Queue time against a real uvicorn server whose one model slot each request holds for a known time:
N concurrent requests wait 0, 1, ..., N-1 holds, which the exported queue histogram must show."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.middleware.servers import otlp_env, serve
from tests.otlp_receiver import OTLPReceiver

pytest.importorskip("uvicorn")

HOLD = 0.2
REQUESTS = 4
MODEL = {"gen_ai.request.model": "m"}


async def concurrently(url: str) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(*(client.get(f"{url}/generate") for _ in range(REQUESTS)))
    return [response.status_code for response in responses]


def test_queue_and_execution_time_of_a_semaphore_bound_server(tmp_path: Path) -> None:
    with OTLPReceiver() as receiver:
        env = {**otlp_env(receiver, "grpc", interval_ms=200), "QUEUE_HOLD": str(HOLD)}
        argv = ["uvicorn", "tests.engine.queue_app:app", "--port", "{port}", "--lifespan", "on"]
        with serve(argv, env, tmp_path / "log") as server:
            assert asyncio.run(concurrently(server.url)) == [200] * REQUESTS

            def finished(r: OTLPReceiver) -> bool:
                points = r.latest("llmobs.inference.execution.duration", MODEL)
                return bool(points) and points[0].count == REQUESTS

            receiver.wait_for(finished)
            (queue,) = receiver.latest("llmobs.inference.queue.duration", MODEL)
            (execution,) = receiver.latest("llmobs.inference.execution.duration", MODEL)
    waits = sum(range(REQUESTS)) * HOLD  # 0 + 1 + 2 + 3 holds
    assert queue.count == REQUESTS and queue.unit == "s"
    assert queue.sum is not None and execution.sum is not None
    assert waits - 0.1 <= queue.sum <= waits + 0.1, queue.sum
    assert queue.min is not None and queue.min < 0.05
    assert queue.max is not None and abs(queue.max - (REQUESTS - 1) * HOLD) < 0.1
    assert REQUESTS * HOLD <= execution.sum <= REQUESTS * HOLD + 0.1
    assert execution.min is not None and execution.min >= HOLD
