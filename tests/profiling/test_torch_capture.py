"""torch.profiler captures in one process (real torch, CPU): one trace per call with its marker, and
no capture while the application runs a profiler of its own (two torch profilers at once crash
torch 2.13; a second cProfile would replace the thread's)."""

from __future__ import annotations

import cProfile
import json
import sys
import threading
from pathlib import Path

import pytest

import llmobs
from llmobs._profiling import PLAN

torch = pytest.importorskip("torch")
model = torch.nn.Linear(8, 2)


@llmobs.monitor_inference(model="linear")
def predict(n: int) -> float:
    with torch.no_grad():
        return float(model(torch.ones(n, 8)).sum())


def traces(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pt.trace.json"))


def test_one_trace_per_call_with_its_marker_and_no_cuda_initialized(tmp_path: Path) -> None:
    llmobs.init(service_name="test", summary=False)
    expected = predict(2)
    llmobs.profile(2, out_dir=str(tmp_path))
    assert [predict(2), predict(2), predict(2)] == [expected] * 3
    found = traces(tmp_path)
    assert len(found) == 2
    for trace in found:
        events = json.loads(trace.read_text())["traceEvents"]
        assert [e["name"] for e in events if e.get("name", "").startswith("llmobs.profile")] == [
            "llmobs.profile inference linear"
        ]
        assert any(e.get("name") == "aten::linear" for e in events)
    assert not torch.cuda.is_initialized()


def test_no_capture_while_the_applications_torch_profiler_runs(tmp_path: Path) -> None:
    llmobs.init(service_name="test", summary=False)
    llmobs.profile(1, out_dir=str(tmp_path))
    started, done = threading.Event(), threading.Event()

    def application_profiler() -> None:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
            started.set()
            done.wait(10)

    thread = threading.Thread(target=application_profiler)
    thread.start()
    try:
        assert started.wait(10)
        predict(1)
        assert traces(tmp_path) == [] and PLAN.armed  # left alone, not counted
    finally:
        done.set()
        thread.join()
    predict(1)
    assert len(traces(tmp_path)) == 1


def test_no_cprofile_capture_over_the_applications_profiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch")
    llmobs.init(service_name="test", summary=False)
    llmobs.profile(1, out_dir=str(tmp_path))
    own = cProfile.Profile()
    own.enable()
    try:
        predict(1)
    finally:
        own.disable()
    assert list(tmp_path.iterdir()) == [] and PLAN.armed
    own.create_stats()
    assert any(name == "predict" for _, _, name in own.stats)
    predict(1)
    assert len(list(tmp_path.glob("*.prof"))) == 1
