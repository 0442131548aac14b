"""Per-token overhead of ``@monitor_inference`` on async-generator streams consumed concurrently, as an
async server streams to many clients: ``python -m benchmarks.bench_streams [--quick]``.

``N`` tasks (1, 1000, 10000) each drain one stream of ``TOKENS`` tokens that yields to the event loop
between tokens, as a model's stream does; bare and monitored streams alternate in each repeat, the
median of the difference per token is printed. Beside it, the floor of any wrapper that keeps
``inspect.isasyncgen`` true: an async generator that only forwards each step (``layer``), and one that
also sets and resets a context variable around each step, as ``current_inference()`` needs (``+context``).
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

import llmobs

from .bench_inference import git_commit, spread, verdict

TOKENS = 100
CONCURRENCY = (1, 1000, 10000)


async def stream() -> AsyncGenerator[int, None]:
    """``TOKENS`` tokens, each after a pass through the event loop."""
    for i in range(TOKENS):
        await asyncio.sleep(0)
        yield i


STEP: ContextVar[object] = ContextVar("step", default=None)


def forwarding(fn: Callable[[], AsyncGenerator[int, Any]], context: bool) -> Callable[[], AsyncIterator[int]]:
    """An async generator that forwards each step of ``fn``'s, setting ``STEP`` around each if ``context``."""

    async def wrapper() -> AsyncGenerator[int, Any]:
        gen, value, token = fn(), None, None
        while True:
            if context:
                token = STEP.set(gen)
            try:
                chunk = await gen.asend(value)
            except StopAsyncIteration:
                return
            finally:
                if token is not None:
                    STEP.reset(token)
            value = yield chunk

    return wrapper


async def drain(make: Callable[[], AsyncIterator[int]]) -> None:
    async for _ in make():
        pass


def per_token(loop: asyncio.AbstractEventLoop, make: Callable[[], AsyncIterator[int]], streams: int) -> float:
    """ns per token of ``streams`` streams drained concurrently in ``loop``."""

    async def together() -> None:
        await asyncio.gather(*(drain(make) for _ in range(streams)))

    gc.collect()
    began = time.perf_counter_ns()
    loop.run_until_complete(together())
    return (time.perf_counter_ns() - began) / (streams * TOKENS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    print(f"command: python -m benchmarks.bench_streams{' --quick' if args.quick else ''}")
    print(f"{os.cpu_count()} cpus, commit {git_commit()}, streams of {TOKENS} tokens, {repeats} repeats")
    os.environ["OTEL_METRICS_EXPORTER"] = "none"
    llmobs.init(service_name="bench", traces=False, export_interval=3600, gpu=False, host=False)
    cases = {
        "llmobs": llmobs.monitor_inference(model="m", operation="chat")(stream),
        "layer": forwarding(stream, context=False),
        "+context": forwarding(stream, context=True),
    }
    loop = asyncio.new_event_loop()
    rows = []
    for streams in CONCURRENCY:
        number = max(1, 1000 // streams)
        bare: list[float] = []
        overhead: dict[str, list[float]] = {name: [] for name in cases}
        for make in cases.values():
            per_token(loop, make, min(streams, 100))  # warm up
        for _ in range(repeats):
            plain = statistics.median(per_token(loop, stream, streams) for _ in range(number))
            bare.append(plain)
            for name, make in cases.items():
                overhead[name].append(statistics.median(per_token(loop, make, streams) for _ in range(number)) - plain)
        rows.append((streams, statistics.median(bare), overhead))
    loop.close()
    llmobs.shutdown()
    print(f"\n{'streams':>8}{'bare ns/token':>15}{'overhead ns/token':>19}{'range':>14}{'layer':>8}{'+context':>10}")
    for streams, bare_ns, overhead in rows:
        ours, layer, context = (statistics.median(overhead[name]) for name in cases)
        print(
            f"{streams:>8}{bare_ns:>15.0f}{ours:>19.0f}{spread(overhead['llmobs'], digits=0):>14}"
            f"{layer:>8.0f}{context:>10.0f}"
        )
    at_1000 = statistics.median(rows[1][2]["llmobs"]) / 1000
    print(f"\nper token at 1000 concurrent streams: {at_1000:.3f} µs (target <= 0.3)  {verdict(at_1000, 0.3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
