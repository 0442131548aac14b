"""CPU cost of the resource collector with 8 stand-in GPUs (tests/nvml_stub) and host readings at
1 Hz, as % of one core: ``python -m benchmarks.bench_collector [--seconds 15]``.

Each case runs in a fresh process that loads the stand-in libnvidia-ml.so.1 through LD_LIBRARY_PATH
and calls ``llmobs.init`` (summary exporter, default 10 s interval): once with the collector, once
without. After a warm-up, process CPU time over the same wall time is measured in both; the
difference is the collector's cost, target <= 0.5% of one core. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests import nvml_stub

GPUS = 8
WARMUP = 2.0
TARGET = 0.5  # % of one core


def child(collector: bool, seconds: float) -> None:
    """Runs in the measured process: init, warm up, measure; prints JSON."""
    import llmobs

    llmobs.init(gpu=collector, host=collector, collect_interval=1.0)
    time.sleep(WARMUP)
    wall, cpu = time.monotonic(), time.process_time()
    threads = {
        t.name: time.clock_gettime(time.pthread_getcpuclockid(t.ident))
        for t in threading.enumerate()
        if t.name.startswith("llmobs-") and t.ident is not None
    }
    time.sleep(seconds)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    per_thread = {
        name: time.clock_gettime(time.pthread_getcpuclockid(t.ident)) - threads[name]
        for t in threading.enumerate()
        if (name := t.name) in threads and t.ident is not None
    }
    llmobs.shutdown()
    print(json.dumps({"wall": wall, "cpu": cpu, "threads": per_thread}))


@dataclass(frozen=True)
class Measured:
    wall: float
    cpu: float
    threads: dict[str, float]


def run(collector: bool, seconds: float, library: Path, config: Path) -> Measured:
    env = {
        **{k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"},
        "LD_LIBRARY_PATH": str(library),
        "NVML_STUB_CONFIG": str(config),
        "TMPDIR": str(config.parent),
    }  # a host lock of its own, in the temp directory
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_collector", "--child", str(int(collector)), "--seconds", str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Measured(**json.loads(out.stdout.splitlines()[-1]))


def _by_kind(threads: dict[str, float]) -> dict[str, tuple[float, int]]:
    """CPU seconds and thread count per kind of thread: the devices' ``llmobs-gpu0``, ``llmobs-gpu1``, …
    together as ``llmobs-gpu<n>``."""
    kinds: dict[str, tuple[float, int]] = {}
    for name, seconds in threads.items():
        kind = re.sub(r"\d+$", "<n>", name)
        total, count = kinds.get(kind, (0.0, 0))
        kinds[kind] = (total + seconds, count + 1)
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured wall time per case")
    parser.add_argument("--child", type=int, choices=(0, 1), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(bool(args.child), args.seconds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        library = nvml_stub.build(directory)
        config = directory / "nvml.conf"
        processes = [(100_000 + i, (i + 1) * nvml_stub.GIB) for i in range(4)]
        nvml_stub.configure(config, [{**nvml_stub.H100, "processes": processes}] * GPUS)
        on, off = run(True, args.seconds, library, config), run(False, args.seconds, library, config)
    cost = 100 * (on.cpu - off.cpu) / on.wall
    print(f"collector, {GPUS} stand-in GPUs + host readings at 1 Hz, {on.wall:.1f} s measured per case:")
    print(f"  process CPU with the collector {on.cpu:.3f} s, without {off.cpu:.3f} s")
    for name, (seconds, count) in sorted(_by_kind(on.threads).items()):
        label = f"{name} ({count} threads)" if count > 1 else name
        print(f"    {label:<30} {seconds * 1000:7.1f} ms  ({100 * seconds / on.wall:.3f}% of one core)")
    print(f"  cost: {cost:.3f}% of one core (target <= {TARGET}%)")


if __name__ == "__main__":
    main()
