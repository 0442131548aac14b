"""ECS JSON lines: a private file (or stderr) with one parseable line per record, ECS field names and
trace ids; files that others could read, or links, are refused at init."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

import llmobs
from llmobs import _logs
from llmobs import semconv as names
from llmobs._config import ConfigError
from tests.otlp_receiver import OTLPReceiver
from tests.processes import run_python

TRACER = TracerProvider().get_tracer("tests")
needs_ecs = pytest.mark.skipif(find_spec("ecs_logging") is None, reason="the ecs extra is not installed")


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@needs_ecs
def test_records_become_private_ecs_lines_with_their_trace(tmp_path: Path) -> None:
    path = tmp_path / "llmobs.json"
    llmobs.init(service_name="ecs", ecs_log=str(path), inventory=False, capture_logging=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with TRACER.start_as_current_span("call") as span:
        _logs.emit_event("llmobs.security", {names.SECURITY_EVENT: "probe", names.URL_PATH: "/x"}, body="a\nb")
        logging.getLogger("tests.ecs").error("app says %s", "hi")
    _logs.emit_event("huge", {"v": "é" * 10_000}, body="q" * 100_000)
    llmobs.shutdown()
    event, app, warning, huge = _lines(path)  # llmobs's own warning about the huge value is a record too
    context = span.get_span_context()
    assert event["trace"] == {"id": f"{context.trace_id:032x}"} and event["span"] == {"id": f"{context.span_id:016x}"}
    assert event["log.level"] == "info" and event["message"] == "a\nb" and event["ecs.version"]
    assert event["event"] == {"name": "llmobs.security"} and event["llmobs"] == {"security": {"event": "probe"}}
    assert event["url"] == {"path": "/x"} and event["service"] == {"name": "ecs"}
    assert "@timestamp" in event and "log" in event and "origin" not in event["log"]  # type: ignore[operator]
    assert (app["message"], app["log.level"], app["trace"]) == ("app says hi", "error", event["trace"])
    assert app["log"] == {"logger": "tests.ecs"}
    assert warning["log.level"] == "warning" and "capped at 256" in warning["message"]  # type: ignore[operator]
    assert len(huge["message"]) == _logs.MAX_BODY_LENGTH + 1  # type: ignore[arg-type]
    assert len(huge["v"]) == 256  # type: ignore[arg-type]


@needs_ecs
def test_stderr_lines(capsys: pytest.CaptureFixture[str]) -> None:
    llmobs.init(service_name="ecs", ecs_log="stderr", inventory=False)
    _logs.emit_event("to.stderr", {"n": 3})
    llmobs.shutdown()
    (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert line["event"] == {"name": "to.stderr"} and line["n"] == 3


@needs_ecs
def test_forked_workers_append_to_one_file_without_interleaving(tmp_path: Path, receiver: OTLPReceiver) -> None:
    path = tmp_path / "shared.json"
    out = run_python(
        f"""
        import os
        import llmobs
        from llmobs import _logs
        llmobs.init(service_name="ecs", ecs_log={str(path)!r}, inventory=False)
        children = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                for i in range(500):
                    _logs.emit_event("worker", {{"i": i, "pad": "p" * 200}})
                llmobs.shutdown()
                os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
        llmobs.shutdown()
        print(*children)
        """,
        receiver,
    )
    lines = _lines(path)
    assert len(lines) == 1500 and {line["process"]["pid"] for line in lines} == set(map(int, out.split()))  # type: ignore[index]


@needs_ecs
@pytest.mark.parametrize("problem", ["symlink", "readable", "directory"])
def test_unsafe_files_are_refused_at_init(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "llmobs.json"
    if problem == "symlink":
        (tmp_path / "target").write_text("")
        path.symlink_to(tmp_path / "target")
    elif problem == "readable":
        path.write_text("")
        path.chmod(0o644)
    else:
        path.mkdir()
    with pytest.raises(ConfigError, match="ECS log file"):
        llmobs.init(service_name="ecs", ecs_log=str(path), inventory=False)
    assert _logs.emitter.logger is None
    if problem == "symlink":
        assert (tmp_path / "target").read_text() == ""


def test_without_ecs_logging_init_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ecs_logging'] = None\n"  # as if the extra were not installed
        "import llmobs\n"
        f"llmobs.init(service_name='ecs', ecs_log={str(tmp_path / 'x.json')!r}, inventory=False)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "ConfigError: LLMOBS_ECS_LOG needs ecs-logging: pip install 'llmobs[ecs]'" in done.stderr
    assert not (tmp_path / "x.json").exists()
