"""Fork models: every child exports what it recorded, as its own instance with its own process ids:
os.fork (gunicorn --preload), multiprocessing Process and Pool, ProcessPoolExecutor, and the spawn
and forkserver start methods (init in the pool initializer)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.otlp_receiver import OTLPReceiver
from tests.processes import run_python

# A job that records one call per task and reports which process ran it.
JOB = """
import json, os, sys, multiprocessing, concurrent.futures
import llmobs

def start():
    llmobs.init(service_name="jobs", endpoint=os.environ["RECEIVER_GRPC"], export_interval=3600,
                traces=False, gpu=False, host=False)

@llmobs.monitor_inference(model="m", operation="chat")
def task(_):
    return os.getpid()

if __name__ == "__main__":
    method, shape = sys.argv[1:] if len(sys.argv) > 1 else os.environ["JOB"].split()
    context = multiprocessing.get_context(method)
    inherited = method == "fork"
    if inherited:
        start()  # children inherit it through fork
    initializer = None if inherited else start
    if shape == "pool":
        with context.Pool(2, initializer=initializer) as pool:
            pids = pool.map(task, range(10), chunksize=1)
            pool.close()
            pool.join()
    elif shape == "executor":
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context, initializer=initializer) as pool:
            pids = list(pool.map(task, range(10)))
    else:
        queue = context.SimpleQueue()
        child = context.Process(target=lambda: queue.put([task(i) for i in range(3)]))
        child.start()
        pids = queue.get()
        child.join()
    print(json.dumps({"parent": os.getpid(), "pids": pids}))
"""


def calls_by_pid(receiver: OTLPReceiver) -> dict[int, int]:
    """The last exported call count of each instance, keyed by its resource's process.pid."""
    last: dict[str, tuple[int, int]] = {}
    for point in receiver.metrics():
        if point.name == "gen_ai.server.request.duration":
            last[point.resource["service.instance.id"]] = (point.resource["process.pid"], point.count or 0)
    by_pid = Counter[int]()
    for pid, count in last.values():
        assert pid not in by_pid, "two instances share a process.pid"
        by_pid[pid] = count
    return dict(by_pid)


@pytest.mark.parametrize(
    ("method", "shape"),
    [("fork", "process"), ("fork", "pool"), ("fork", "executor"), ("spawn", "pool"), ("forkserver", "executor")],
)
def test_multiprocessing_children_export_their_calls(
    method: str, shape: str, receiver: OTLPReceiver, tmp_path: Path
) -> None:
    output = json.loads(run_python(JOB, receiver, script=tmp_path / "job.py", JOB=f"{method} {shape}"))
    expected = Counter(output["pids"])
    assert output["parent"] not in expected and sum(expected.values()) == (3 if shape == "process" else 10)
    assert calls_by_pid(receiver) == dict(expected)


def test_forked_child_exports_as_its_own_instance_with_its_own_process_ids(receiver: OTLPReceiver) -> None:
    output = run_python(
        """
        import os, llmobs
        llmobs.init(service_name="forking", endpoint=os.environ["RECEIVER_HTTP"], protocol="http/protobuf",
                    export_interval=3600, traces=False, gpu=False, host=False)
        @llmobs.monitor_inference(model="m", operation="chat")
        def predict(): pass
        predict()
        pid = os.fork()
        if pid == 0:
            for _ in range(3): predict()
            llmobs.shutdown()
            os._exit(0)
        os.waitpid(pid, 0)
        predict()
        print(os.getpid(), pid)
    """,
        receiver,
        OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="process",  # as with --preload: process.* detected in the master
    )
    parent, child = (int(pid) for pid in output.split())
    assert calls_by_pid(receiver) == {parent: 2, child: 3}
    parents = {p.resource["process.pid"]: p.resource["process.parent_pid"] for p in receiver.metrics()}
    assert parents[child] == parent and parents[parent] != child
