"""The local history: exact totals per interval, a private file in the user's data directory, bounds
(retention, size cap), and a locked, corrupt, linked or shared file costing one warning and nothing else."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import MetricsData

import llmobs
from llmobs import _history
from llmobs._report.data import Report, SourceError, load_history


@llmobs.monitor_inference(model="m", operation="chat")
def call(fail: bool = False) -> str:
    llmobs.current_inference().record_tokens(input=3, output=7)
    if fail:
        raise ValueError("bad")
    return "ok"


def calls(count: int, failing: int = 0) -> None:
    for i in range(count):
        with contextlib.suppress(ValueError):
            call(i < failing)


def start(path: Path | str, **options: object) -> None:
    llmobs.init(service_name="history-test", history=str(path), summary=False, gpu=False, host=False,
                export_interval=3600, **options)  # type: ignore[arg-type]  # fmt: skip


def read(path: Path) -> Report:
    return load_history(str(path), time.time() - 3600, time.time() + 1)


def test_each_interval_adds_its_deltas_and_the_sums_are_exact(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    start(path)
    calls(30, failing=3)
    assert llmobs.force_flush(timeout=5)
    calls(10)
    assert llmobs.force_flush(timeout=5)
    llmobs.record_evaluation("relevance", 0.5, model="m")
    llmobs.shutdown()
    model = read(path).models["m"]
    assert (model.calls, model.errors, model.output_tokens, model.input_tokens) == (40, 3, 280, 120)
    assert dict(model.error_types) == {"ValueError": 3}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM intervals").fetchone()[0] == 3  # two flushes and the final export
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == _history.SCHEMA_VERSION
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_embedded_default_writes_to_the_user_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    llmobs.init(service_name="my svc", export_interval=3600, gpu=False, host=False)  # no endpoint: the summary
    calls(5)
    llmobs.shutdown()
    path = tmp_path / "data" / "llmobs" / "my_svc.db"
    assert read(path).models["m"].calls == 5
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_off_writes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("LLMOBS_HISTORY", "off")
    llmobs.init(export_interval=3600, gpu=False, host=False)
    calls(5)
    llmobs.shutdown()
    assert not list(tmp_path.rglob("*.db"))


def test_a_bad_setting_fails_at_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(llmobs.ConfigError, match="is a directory: name a file in it"):
        start(tmp_path)
    monkeypatch.setenv("LLMOBS_HISTORY_RETENTION", "a week")
    with pytest.raises(llmobs.ConfigError, match="LLMOBS_HISTORY_RETENTION: 'a week' is not a duration"):
        start(tmp_path / "h.db")


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """llmobs's warnings about the history (other parts' share the host's runtime directory with other runs)."""
    found = (r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "llmobs")
    export = ("llmobs: internal error in sending metrics", "llmobs: internal error in metric export")  # its thread
    return [message for message in found if "history" in message or message.startswith(export)]


def exports_with(path: Path, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Three exports with calls in between; the app sees no exception; llmobs's warnings."""
    caplog.set_level(logging.WARNING)
    start(path)
    for _ in range(3):
        calls(2)
        llmobs.force_flush(timeout=5)
    llmobs.shutdown()
    return warnings(caplog)


def test_a_corrupt_file_costs_one_warning_and_the_report_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.db"
    path.write_bytes(b"not a database at all" * 100)
    found = exports_with(path, caplog)
    assert len(found) == 1 and "cannot be written (file is not a database)" in found[0]
    with pytest.raises(SourceError, match="cannot be read: file is not a database"):
        read(path)


def test_a_link_is_never_followed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    (tmp_path / "h.db").symlink_to(target)
    found = exports_with(tmp_path / "h.db", caplog)
    assert len(found) == 1 and "symbolic link" in found[0]
    assert target.read_text() == "precious"


def test_a_directory_others_may_write_to_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    found = exports_with(shared / "h.db", caplog)
    assert len(found) == 1 and "may be written by other users" in found[0]
    assert not (shared / "h.db").exists()


def test_a_newer_schema_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "h.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {_history.SCHEMA_VERSION + 1}")
    found = exports_with(path, caplog)
    assert len(found) == 1 and "newer than this llmobs" in found[0]


def test_a_locked_file_delays_the_interval_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(_history, "BUSY_TIMEOUT", 0.1)
    path = tmp_path / "h.db"
    start(path)
    calls(4)
    assert llmobs.force_flush(timeout=5)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another worker's transaction, held past the busy timeout
    calls(6, failing=1)
    llmobs.force_flush(timeout=5)
    calls(3)
    llmobs.force_flush(timeout=5)
    other.execute("ROLLBACK")
    other.close()
    calls(1)
    llmobs.shutdown()
    found = warnings(caplog)
    assert len(found) == 1 and "database is locked" in found[0]
    model = read(path).models["m"]
    assert (model.calls, model.errors) == (14, 1)  # the locked intervals' deltas went out with the next one


def test_retention_and_the_size_cap_drop_the_oldest_intervals(tmp_path: Path) -> None:
    path = str(tmp_path / "h.db")
    start(path)
    calls(3)
    data = _snapshot()
    now = time.time()
    _history.write(path, data, now - 3 * 86_400 - 10, now - 3 * 86_400, 86_400, 2**30)  # older than a day
    _history.write(path, data, now - 10, now, 86_400, 2**30)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM intervals").fetchone()[0] == 1
    for i in range(300):
        _history.write(path, data, now + i, now + i + 1, 86_400, 64 * 1024)
    size = os.path.getsize(path)
    with sqlite3.connect(path) as db:
        kept, newest = db.execute("SELECT count(*), max(end) FROM intervals").fetchone()
    assert size <= 2 * 64 * 1024 and 0 < kept < 300 and newest == now + 300


def _snapshot() -> MetricsData:
    """What an export hands the history now (the registry's points, delta)."""
    from llmobs import _lifecycle
    from llmobs._aggregation import Registry
    from llmobs._points import Points

    registry, resource = _lifecycle.state.registry, _lifecycle.state.resource
    assert isinstance(registry, Registry) and resource is not None
    return Points(resource, delta=True).build(registry.collect())
