"""Per-token overhead of ``@monitor_inference`` on async-generator streams consumed concurrently, as an
async server streams to many clients: ``python -m benchmarks.bench_streams [--quick]``.

``N`` tasks (1, 1000, 10000) each drain one stream of ``TOKENS`` tokens that yields to the event loop
between tokens, as a model's stream does; bare and monitored streams alternate in each repeat, the
median of the difference per token is printed. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable

import llmobs

from .bench_inference import git_commit, spread, verdict

TOKENS = 100
CONCURRENCY = (1, 1000, 10000)


async def stream() -> AsyncIterator[int]:
    """``TOKENS`` tokens, each after a pass through the event loop."""
    for i in range(TOKENS):
        await asyncio.sleep(0)
        yield i


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
    monitored = llmobs.monitor_inference(model="m", operation="chat")(stream)
    loop = asyncio.new_event_loop()
    rows = []
    for streams in CONCURRENCY:
        number = max(1, 1000 // streams)
        overhead, bare = [], []
        per_token(loop, monitored, min(streams, 100))  # warm up
        for _ in range(repeats):
            plain = statistics.median(per_token(loop, stream, streams) for _ in range(number))
            ours = statistics.median(per_token(loop, monitored, streams) for _ in range(number))
            bare.append(plain)
            overhead.append(ours - plain)
        rows.append((streams, statistics.median(bare), overhead))
    loop.close()
    llmobs.shutdown()
    print(f"\n{'streams':>8}{'bare ns/token':>15}{'overhead ns/token':>19}{'range':>14}")
    for streams, bare_ns, overhead in rows:
        print(f"{streams:>8}{bare_ns:>15.0f}{statistics.median(overhead):>19.0f}{spread(overhead, digits=0):>14}")
    at_1000 = statistics.median(rows[1][2]) / 1000
    print(f"\nper token at 1000 concurrent streams: {at_1000:.3f} µs (target <= 0.3)  {verdict(at_1000, 0.3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
