"""Queue time against a real uvicorn server whose one model slot each request holds for a known time:
N concurrent requests wait about 0, 1, ..., N-1 holds, each as long as the server timed it, which the
exported queue histogram must show."""

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


async def concurrently(url: str) -> list[dict[str, float]]:
    """The calls' own timings, as the server measured them (its perf_counter, as llmobs uses)."""
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(*(client.get(f"{url}/generate") for _ in range(REQUESTS)))
    assert [response.status_code for response in responses] == [200] * REQUESTS
    return [response.json() for response in responses]


def test_queue_and_execution_time_of_a_semaphore_bound_server(tmp_path: Path) -> None:
    with OTLPReceiver() as receiver:
        env = {**otlp_env(receiver, "grpc", interval_ms=200), "QUEUE_HOLD": str(HOLD)}
        argv = ["uvicorn", "tests.engine.queue_app:app", "--port", "{port}", "--lifespan", "on"]
        with serve(argv, env, tmp_path / "log") as server:
            calls = asyncio.run(concurrently(server.url))

            def finished(r: OTLPReceiver) -> bool:
                points = [r.latest(f"llmobs.inference.{part}.duration", MODEL) for part in ("queue", "execution")]
                return all(found and found[0].count == REQUESTS for found in points)

            receiver.wait_for(finished)
            (queue,) = receiver.latest("llmobs.inference.queue.duration", MODEL)
            (execution,) = receiver.latest("llmobs.inference.execution.duration", MODEL)
    assert queue.count == REQUESTS and queue.unit == "s"
    assert queue.sum is not None and execution.sum is not None
    assert queue.min is not None and queue.max is not None and execution.min is not None
    # Against the calls' own timings, not the nominal 0 + 1 + 2 + 3 holds (a loaded machine starts the
    # requests apart and oversleeps): a call's queue time runs from its start (after "before", before
    # "entered") to its mark (after "acquired", before "marked"); its execution time from the mark to
    # its end (after "held", before "after"). Without the mark, the queue time would hold the slot too.
    waits = [(c["acquired"] - c["entered"], c["marked"] - c["before"]) for c in calls]
    runs = [(c["held"] - c["marked"], c["after"] - c["acquired"]) for c in calls]
    assert sum(low for low, _ in waits) <= queue.sum <= sum(high for _, high in waits), (queue.sum, waits)
    assert min(low for low, _ in waits) <= queue.min <= min(high for _, high in waits), (queue.min, waits)
    assert max(low for low, _ in waits) <= queue.max <= max(high for _, high in waits), (queue.max, waits)
    assert sum(low for low, _ in runs) <= execution.sum <= sum(high for _, high in runs), (execution.sum, runs)
    assert execution.min >= HOLD
