"""Profiling inside one process: which calls a request captures (count, model, min_duration), the
automatic rule and its cool-down, the span attribute, a failing profiler, the trigger socket and who
may reach it, the output directory's bound, and the settings. Without torch in ``sys.modules`` the
captures are real cProfile stats."""

from __future__ import annotations

import json
import logging
import os
import pstats
import re
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import llmobs
from llmobs import semconv as names
from llmobs._config import ConfigError, load
from llmobs._private_dir import open_private_directory, runtime_directory
from llmobs._profiling import PLAN
from llmobs._profiling.control import _same_user, read_message, socket_path
from llmobs._profiling.store import Store
from tests.otlp_receiver import OTLPReceiver


@pytest.fixture(autouse=True)
def without_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The application has not imported torch here: captures are cProfile's."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    yield
    PLAN.cancel()


@llmobs.monitor_inference(model="tiny")
def predict(x: int, pause: float = 0.0) -> int:
    time.sleep(pause)
    return x * 2


@llmobs.monitor_inference(model="other")
def other(x: int, pause: float = 0.0) -> int:
    time.sleep(pause)
    return x + 1


@llmobs.monitor_inference(model="tiny")
def broken() -> None:
    raise KeyError("mine")


def stats(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.prof"))


def profiled_spans(receiver: OTLPReceiver, count: int) -> list[str]:
    llmobs.force_flush()
    receiver.wait_for(lambda r: len([s for s in r.spans() if s.name.startswith("inference")]) >= count)
    return [str(s.attributes.get(names.PROFILE_PATH, "")) for s in receiver.spans()]


def test_the_next_calls_are_captured_with_their_paths_on_their_spans(
    tmp_path: Path, otlp: Callable[..., OTLPReceiver]
) -> None:
    receiver = otlp()
    assert llmobs.profile(2, out_dir=str(tmp_path / "out")) == str(tmp_path / "out")
    assert [predict(1), predict(2), predict(3)] == [2, 4, 6]
    files = stats(tmp_path / "out")
    assert len(files) == 2
    assert sorted(profiled_spans(receiver, 3)) == ["", *map(str, files)]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        profiled = {name for _, _, name in pstats.Stats(str(path)).stats}  # type: ignore[attr-defined]
        assert {"predict", "<built-in method time.sleep>"} <= profiled
    assert not PLAN.armed  # used up: the idle check again


def test_a_raising_call_is_captured_and_its_exception_passes_unchanged(tmp_path: Path) -> None:
    llmobs.init(service_name="test", summary=False)
    llmobs.profile(1, out_dir=str(tmp_path))
    with pytest.raises(KeyError) as raised:
        broken()
    assert raised.value.args == ("mine",)
    assert len(stats(tmp_path)) == 1


def test_model_and_min_duration_choose_the_calls(tmp_path: Path) -> None:
    llmobs.init(service_name="test", summary=False)
    llmobs.profile(1, model="tiny", min_duration=0.05, out_dir=str(tmp_path))
    predict(1)  # too fast: profiled, not kept, not counted
    other(1, pause=0.06)  # another model
    assert stats(tmp_path) == []
    predict(1, pause=0.06)
    predict(1, pause=0.06)  # the request was for one
    assert len(stats(tmp_path)) == 1


def test_a_slow_call_profiles_the_next_calls_of_its_model_once_per_cooldown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMOBS_PROFILING_DIR", str(tmp_path))
    monkeypatch.setenv("LLMOBS_PROFILING_AUTO_THRESHOLD", "40")
    monkeypatch.setenv("LLMOBS_PROFILING_AUTO_CALLS", "2")
    llmobs.init(service_name="test", summary=False)
    predict(1)
    other(1)
    assert stats(tmp_path) == []
    predict(1, pause=0.05)  # over the threshold: the next two calls of "tiny" are captured
    other(1)
    predict(1)
    predict(1)
    predict(1)
    assert len(stats(tmp_path)) == 2
    predict(1, pause=0.05)  # within the cool-down
    predict(1)
    assert len(stats(tmp_path)) == 2
    other(1, pause=0.05)  # another model has its own cool-down
    other(1)
    assert len(stats(tmp_path)) == 3
    llmobs.shutdown()
    assert not PLAN.armed  # the rule ends with llmobs


def test_a_failing_profiler_costs_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    llmobs.init(service_name="test", summary=False)
    out = tmp_path / "out"
    llmobs.profile(3, out_dir=str(out))
    out.rmdir()
    out.symlink_to(tmp_path)  # planted after the check: saving refuses to follow it
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        assert [predict(1), predict(2)] == [2, 4]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "llmobs: internal error in profiler stop; telemetry for it is skipped"
    ]
    assert not PLAN.armed and stats(tmp_path) == []


def test_streams_are_not_captured(tmp_path: Path) -> None:
    @llmobs.monitor_inference(model="tiny")
    def tokens() -> Iterator[int]:
        yield from range(3)

    llmobs.init(service_name="test", summary=False)
    llmobs.profile(1, out_dir=str(tmp_path))
    assert list(tokens()) == [0, 1, 2]
    assert stats(tmp_path) == []
    predict(1)
    assert len(stats(tmp_path)) == 1


def ask(message: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(socket_path(os.getpid()))
        conn.sendall(message)
        reply = read_message(conn)
    assert reply is not None
    return reply


def test_the_trigger_socket_answers_this_user_and_goes_at_shutdown(tmp_path: Path) -> None:
    llmobs.init(service_name="test", summary=False)
    path = socket_path(os.getpid())
    info = os.lstat(path)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert ask(json.dumps({"calls": 1, "out_dir": str(tmp_path)}).encode() + b"\n") == {"directory": str(tmp_path)}
    predict(1)
    assert len(stats(tmp_path)) == 1
    assert "must be a whole number" in str(ask(b'{"calls": 0}\n')["error"])
    assert "error" in ask(b"not json\n")
    llmobs.shutdown()
    assert not os.path.exists(path)
    deadline = time.monotonic() + 5
    while "llmobs-profiling" in {t.name for t in threading.enumerate()} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "llmobs-profiling" not in {t.name for t in threading.enumerate()}  # its thread ended too


def test_profiling_off_opens_no_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOBS_PROFILING", "off")
    llmobs.init(service_name="test", summary=False)
    assert not os.path.exists(socket_path(os.getpid()))


def in_child(action: Callable[[], None], nobody: bool = False) -> int:
    """Run ``action`` in a forked child (that became user nobody); its exit status (0: it passed)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if nobody:
                os.setgid(65534)
                os.setuid(65534)
            action()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_forked_worker_has_its_own_trigger_and_no_inherited_request(tmp_path: Path) -> None:
    llmobs.init(service_name="test", summary=False)
    llmobs.profile(5, out_dir=str(tmp_path))
    parent = socket_path(os.getpid())

    def child() -> None:
        assert not PLAN.armed  # the parent was asked, not its workers
        assert os.path.exists(socket_path(os.getpid()))
        assert ask(json.dumps({"calls": 1, "out_dir": str(tmp_path)}).encode() + b"\n") == {"directory": str(tmp_path)}
        predict(1)
        assert len(stats(tmp_path)) == 1
        llmobs.shutdown()
        assert not os.path.exists(socket_path(os.getpid()))

    assert in_child(child) == 0
    assert os.path.exists(parent)  # the child left its parent's socket alone
    assert PLAN.armed


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_another_user_cannot_reach_the_trigger() -> None:
    llmobs.init(service_name="test", summary=False)
    path = socket_path(os.getpid())

    def connect() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn, pytest.raises(PermissionError):
            conn.connect(path)

    assert in_child(connect, nobody=True) == 0
    assert not PLAN.armed


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_a_peer_of_another_user_is_refused() -> None:
    """Behind the 0700 directory, the peer's uid is checked again (SO_PEERCRED)."""
    with tempfile.TemporaryDirectory() as shared, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        os.chmod(shared, 0o755)  # outside pytest's 0700 tree, so that nobody can reach the socket
        path = os.path.join(shared, "open.sock")
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen(1)

        def connect() -> None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(path)

        assert in_child(connect, nobody=True) == 0
        conn, _ = server.accept()
        with conn:
            assert not _same_user(conn)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mine:
            mine.connect(path)
            conn, _ = server.accept()
            with conn:
                assert _same_user(conn)


def test_the_directory_keeps_the_newest_files_within_its_budget(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "out"), max_bytes=250)
    store.check()
    (tmp_path / "elsewhere.prof").write_bytes(b"x" * 1000)
    (tmp_path / "out" / "link.prof").symlink_to(tmp_path / "elsewhere.prof")  # never followed or counted
    (tmp_path / "out" / "notes.txt").write_text("the user's")  # not a profile: kept
    for i in range(5):
        with store.create(f"w.{i}.prof") as out:
            out.write(b"x" * 100)
        os.utime(tmp_path / "out" / f"w.{i}.prof", ns=(i * 10**9, i * 10**9))
        store.keep(f"w.{i}.prof")
    assert sorted(os.listdir(tmp_path / "out")) == ["link.prof", "notes.txt", "w.3.prof", "w.4.prof"]
    assert (tmp_path / "elsewhere.prof").stat().st_size == 1000


def test_a_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ConfigError, match="pick a directory of yours"):
        llmobs.profile(1, out_dir=str(tmp_path / "link"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"calls": 0}, "calls=...) must be a whole number from 1 to 1000"),
        ({"calls": True}, "calls=...) must be a whole number"),
        ({"model": ""}, "model=...) must be a model name"),
        ({"min_duration": -1}, "min_duration=...) must be a number of seconds >= 0"),
    ],
)
def test_bad_arguments_raise_config_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        llmobs.profile(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LLMOBS_PROFILING", "maybe", "LLMOBS_PROFILING must be 'on' or 'off'"),
        ("LLMOBS_PROFILING_DIR", "profiles", "LLMOBS_PROFILING_DIR must be an absolute directory path"),
        ("LLMOBS_PROFILING_MAX_MB", "0", "LLMOBS_PROFILING_MAX_MB must be an integer from 1"),
        ("LLMOBS_PROFILING_AUTO_THRESHOLD", "soon", "LLMOBS_PROFILING_AUTO_THRESHOLD must be a number of milli"),
        ("LLMOBS_PROFILING_AUTO_CALLS", "0", "LLMOBS_PROFILING_AUTO_CALLS must be an integer from 1"),
        ("LLMOBS_PROFILING_AUTO_COOLDOWN", "-1", "LLMOBS_PROFILING_AUTO_COOLDOWN must be a number of milli"),
    ],
)
def test_bad_settings_fail_init(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(env={variable: value})


def test_settings_defaults_and_values() -> None:
    default = load(env={})
    assert (default.profiling, default.profiling_auto, default.profiling_max_bytes) == (True, None, 100 * 2**20)
    chosen = load(
        env={
            "LLMOBS_PROFILING": "off",
            "LLMOBS_PROFILING_MAX_MB": "5",
            "LLMOBS_PROFILING_AUTO_THRESHOLD": "1500",
            "LLMOBS_PROFILING_AUTO_CALLS": "3",
            "LLMOBS_PROFILING_AUTO_COOLDOWN": "60000",
        }
    )
    assert (chosen.profiling, chosen.profiling_max_bytes, chosen.profiling_auto) == (False, 5 * 2**20, 1.5)
    assert (chosen.profiling_auto_calls, chosen.profiling_auto_cooldown) == (3, 60.0)


def test_the_sockets_of_ended_processes_are_removed_and_live_ones_kept() -> None:
    os.close(open_private_directory(runtime_directory()))
    stale, live = socket_path(999_999_999), socket_path(999_999_998)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ended:
        ended.bind(stale)  # closed without unlinking, as a process killed with SIGKILL leaves it
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(live)
        listener.listen(1)
        try:
            llmobs.init(service_name="test", summary=False)
            assert not os.path.exists(stale)
            assert os.path.exists(live)
        finally:
            os.unlink(live)


def test_a_peer_that_connects_and_leaves_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """Another process's stale-socket check connects to this trigger and closes at once."""
    llmobs.init(service_name="test", summary=False)
    for _ in range(3):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(socket_path(os.getpid()))
    assert ask(b'{"calls": 1}\n')["directory"]
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
