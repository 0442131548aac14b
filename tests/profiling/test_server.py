"""A real uvicorn server profiled from the real CLI: ``llmobs profile PID`` against its process, then
requests over loopback; the trace files are counted per call, loaded with TensorBoard's PyTorch
profiler plugin, and matched to the spans the tests' OTLP receiver decoded."""

from __future__ import annotations

import json
import pstats
import stat
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from llmobs import semconv as names
from tests.middleware.servers import Server, otlp_env, serve
from tests.otlp_receiver import OTLPReceiver

UVICORN = ["uvicorn", "tests.profiling.app:app", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning"]
MARKER = "llmobs.profile predict "


def trigger(server: Server, env: dict[str, str], *options: str) -> str:
    """Run ``llmobs profile PID`` as a user would; its printed line."""
    command = [sys.executable, "-m", "llmobs._cli", "profile", str(server.process.pid), *options]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def files(directory: Path, suffix: str) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(suffix)) if directory.exists() else []


def wait_files(directory: Path, suffix: str, count: int) -> list[Path]:
    deadline = time.monotonic() + 10
    while len(found := files(directory, suffix)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def markers(trace: Path) -> list[dict[str, object]]:
    """The llmobs.profile ranges in one Chrome trace: one per profiled call."""
    events = json.loads(trace.read_text())["traceEvents"]
    return [e for e in events if str(e.get("name", "")).startswith(MARKER)]


def get(client: httpx.Client, path: str) -> dict[str, object]:
    response = client.get(path, params={"n": 2})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_torch_server_profiled_from_the_cli(tmp_path: Path, receiver: OTLPReceiver) -> None:
    pytest.importorskip("torch")
    env = {**otlp_env(receiver, "grpc"), "PROFILE_TORCH": "1"}
    out = tmp_path / "traces"
    with (
        serve(UVICORN, env, tmp_path / "server.log", start_timeout=60) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.get("/health").json() == {"torch": True}
        printed = trigger(server, env, "--calls", "3", "--out", str(out))
        assert str(out) in printed
        with ThreadPoolExecutor(6) as pool:  # concurrent calls while profiling: one captured at a time
            answers = list(pool.map(lambda _: get(client, "/sync"), range(6)))
        while len(files(out, ".pt.trace.json")) < 3:
            answers.append(get(client, "/sync"))
        answers += [get(client, "/sync") for _ in range(2)]  # the request is used up: not profiled
        trigger(server, env, "--calls", "1", "--model", "tiny-async", "--out", str(out))
        answers.append(get(client, "/sync"))  # another model: not profiled
        answers.append(get(client, "/async"))
        traces = wait_files(out, ".pt.trace.json", 4)
        log = server.output()
        # While the server runs: this app has no lifespan middleware, so uvicorn's re-raised SIGTERM
        # ends it without llmobs's final flush (docs/middleware.md); spans go out every 200 ms.
        receiver.wait_for(lambda r: len([s for s in r.spans() if names.PROFILE_PATH in s.attributes]) >= 4)
    assert len({a["y"] for a in answers}) == 1  # profiled or not, the same model gives the same answer
    assert len(traces) == 4
    per_file = [markers(t) for t in traces]
    assert [len(m) for m in per_file] == [1, 1, 1, 1]  # each file holds exactly its one call
    assert all(m[0]["ph"] == "X" and float(str(m[0]["dur"])) > 0 for m in per_file)  # Chrome trace complete events
    models = Counter(str(m[0]["name"]).removeprefix(MARKER) for m in per_file)
    assert models == {"tiny": 3, "tiny-async": 1}
    # The plain def endpoint ran on the thread pool, the async one on the event loop: each was
    # captured on its own thread.
    assert len({m[0]["tid"] for m in per_file}) >= 2
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(t.stat().st_mode) == 0o600 for t in traces)
    assert f"profiling done; the files are in {out}" in log
    spans = [s for s in receiver.spans() if names.PROFILE_PATH in s.attributes]
    assert len(spans) == 4
    assert sorted(s.attributes[names.PROFILE_PATH] for s in spans) == [str(t) for t in traces]
    assert Counter(s.name for s in spans) == {"predict tiny": 3, "predict tiny-async": 1}
    for trace in traces:
        assert_tensorboard_loads(trace, tmp_path / "cache")


def assert_tensorboard_loads(trace: Path, cache: Path) -> None:
    """Parse one file as TensorBoard's PyTorch profiler plugin does for each worker file of a run."""
    data_module = pytest.importorskip("torch_tb_profiler.profiler.data")
    generator_module = pytest.importorskip("torch_tb_profiler.profiler.run_generator")
    from torch_tb_profiler.consts import WORKER_PATTERN

    match = WORKER_PATTERN.match(trace.name)
    assert match is not None  # named as the plugin expects: worker.span.pt.trace.json
    cache.mkdir(exist_ok=True)
    data = data_module.RunProfileData.parse(match.group(1), match.group(2)[1:], str(trace), str(cache))
    profile = generator_module.RunGenerator(match.group(1), match.group(2)[1:], data).generate_run_profile()
    operators = {row[0] for row in profile.operation_pie_by_name["host_total_time"]["rows"]}
    assert "aten::linear" in operators
    assert {view.name for view in profile.views} >= {"overall", "operator", "trace"}


def test_server_without_torch_writes_cprofile_stats(tmp_path: Path, receiver: OTLPReceiver) -> None:
    env = otlp_env(receiver, "grpc")
    out = tmp_path / "stats"
    with (
        serve(UVICORN, env, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        assert client.get("/health").json() == {"torch": False}  # llmobs never imports torch
        trigger(server, env, "--calls", "2", "--out", str(out))
        get(client, "/sync")
        get(client, "/async")
        get(client, "/sync")
        stats = wait_files(out, ".prof", 2)
        assert client.get("/health").json() == {"torch": False}
    assert len(stats) == 2
    assert not files(out, ".pt.trace.json")
    for path in stats:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        loaded = pstats.Stats(str(path))
        functions = {name for _, _, name in loaded.stats}  # type: ignore[attr-defined]
        assert "run" in functions  # the app's model function, profiled on the thread that ran it


def test_cli_names_a_process_without_trigger(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "llmobs._cli", "profile", "999999999", "--calls", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "process 999999999 has no profiling trigger" in done.stderr
