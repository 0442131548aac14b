"""A process using llmobs as an application would, for the collector tests: ``llmobs.init()`` from
the environment (OTEL_*/LLMOBS_*, the stand-in NVML through LD_LIBRARY_PATH, the service name from
TEST_SERVICE_NAME), then commands on stdin, one per line, each answered with one line on stdout; end
of input shuts llmobs down.

flush    export now
call     one call of a decorated function
measure  the median latency, in seconds, of 200 calls of it
fork     fork; prints "forked <pid>"; the forked process runs until this one exits
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time

import llmobs


@llmobs.monitor_inference(model="m")
def predict(x: int) -> int:
    return x


def measure() -> float:
    latencies = []
    for _ in range(200):
        start = time.perf_counter()
        predict(1)
        latencies.append(time.perf_counter() - start)
    return statistics.median(latencies)


def fork() -> str:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return f"forked {pid}"
    while os.getppid() == parent:  # llmobs restarted here at fork: its own exports, collector and NVML
        time.sleep(0.1)
    llmobs.shutdown()
    os._exit(0)


COMMANDS = {
    "flush": lambda: str(llmobs.force_flush()),
    "call": lambda: str(predict(1)),
    "measure": lambda: str(measure()),
    "fork": fork,
}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    llmobs.init(service_name=os.environ["TEST_SERVICE_NAME"])
    print("ready", flush=True)
    for line in sys.stdin:
        print(COMMANDS[line.strip()](), flush=True)
    llmobs.shutdown()


if __name__ == "__main__":
    main()
