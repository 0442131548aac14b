"""Workers hand their snapshots over through files: the merge is exact, a worker that exits or is killed
leaves its totals behind (nothing goes backwards), and nothing stays on disk once all have left."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource

from llmobs import semconv
from llmobs._aggregation import Registry
from llmobs._points import Points
from llmobs._prometheus.share import Share, directory_name
from llmobs._prometheus.snapshot import Snapshot, from_metrics, merge

MODEL = ((semconv.MODEL, "m"),)
FORK = multiprocessing.get_context("fork")


def snapshot_of(calls: int, in_flight: int = 0) -> Snapshot:
    """A process's snapshot after ``calls`` calls of 0.02 s, ``in_flight`` still running."""
    registry = Registry()
    duration = registry.series(semconv.REQUEST_DURATION, MODEL)
    for _ in range(calls):
        duration.record(0.02)
    registry.series(semconv.BATCH_ITEMS, MODEL).record(calls)
    registry.series(semconv.PROCESS_MEMORY_USAGE, ()).record(1000 + calls)
    active = registry.series(semconv.ACTIVE_REQUESTS, MODEL)
    for _ in range(in_flight):
        active.record(1)
    return from_metrics(Points(Resource.create({"service.name": "s"})).build(registry.collect()))


def worker(root: str, calls: int, leave: Event, published: Event) -> None:
    share = Share("s", root)
    share.publish(snapshot_of(calls, in_flight=1))
    published.set()
    leave.wait(30)
    share.publish(snapshot_of(calls))
    share.leave()


def start(root: Path, calls: int) -> tuple[multiprocessing.process.BaseProcess, Event]:
    leave, published = FORK.Event(), FORK.Event()
    process = FORK.Process(target=worker, args=(str(root), calls, leave, published), daemon=True)
    process.start()
    assert published.wait(10)
    return process, leave


def totals(share: Share) -> tuple[int | None, float | None, float | None, dict[str, float]]:
    merged = merge(share.gather(Snapshot(os.getpid(), time.time(), {})))
    duration = merged[semconv.REQUEST_DURATION.name].points[MODEL]
    items = merged[semconv.BATCH_ITEMS.name].points[MODEL]
    active = merged.get(semconv.ACTIVE_REQUESTS.name)
    memory = merged[semconv.PROCESS_MEMORY_USAGE.name].points if semconv.PROCESS_MEMORY_USAGE.name in merged else {}
    assert isinstance(duration, tuple) and not isinstance(items, tuple)
    in_flight = None if active is None else active.points.get(MODEL)
    assert not isinstance(in_flight, tuple)
    by_pid = {str(dict(key)[semconv.PROCESS_PID]): value for key, value in memory.items()}
    assert all(not isinstance(v, tuple) for v in by_pid.values())
    return duration[2], items, in_flight, by_pid  # type: ignore[return-value]


def test_the_merge_adds_up_workers_and_keeps_their_own_readings_apart(tmp_path: Path) -> None:
    holder = Share("s", str(tmp_path))
    (a, leave_a), (b, leave_b) = start(tmp_path, 3), start(tmp_path, 5)
    count, items, in_flight, memory = totals(holder)
    assert (count, items, in_flight) == (8, 8, 2)
    assert memory == {str(a.pid): 1003, str(b.pid): 1005}
    for process, leave in ((a, leave_a), (b, leave_b)):
        leave.set()
        process.join(10)
    assert totals(holder)[:3] == (8, 8, None)  # gone: their counts stay, their in-flight and gauges go
    holder.leave()
    assert not os.path.exists(holder.path)


def test_a_killed_worker_leaves_its_counts_behind_and_its_files_are_folded_once(tmp_path: Path) -> None:
    holder = Share("s", str(tmp_path))
    (killed, _), (alive, leave) = start(tmp_path, 4), start(tmp_path, 6)
    assert totals(holder)[:3] == (10, 10, 2)
    os.kill(killed.pid, signal.SIGKILL)  # type: ignore[arg-type]
    killed.join(10)
    for _ in range(3):  # each scrape after the kill sees the same totals: folded exactly once
        assert totals(holder)[:3] == (10, 10, 1)
    files = sorted(p.name for p in Path(holder.path).iterdir())
    assert not [f for f in files if f.startswith(f"{killed.pid}-")], files
    leave.set()
    alive.join(10)
    assert totals(holder)[:3] == (10, 10, None)
    holder.leave()
    assert not os.path.exists(holder.path)


def test_a_new_run_starts_from_zero_after_a_crash_left_files_behind(tmp_path: Path) -> None:
    (crashed, _) = start(tmp_path, 7)
    os.kill(crashed.pid, signal.SIGKILL)  # type: ignore[arg-type]
    crashed.join(10)
    share = Share("s", str(tmp_path))  # the first member of a new run
    merged = merge(share.gather(Snapshot(os.getpid(), time.time(), {})))
    assert semconv.REQUEST_DURATION.name not in merged
    share.leave()


def test_services_do_not_share_and_the_directory_is_private(tmp_path: Path) -> None:
    first, second = Share("a", str(tmp_path)), Share("b", str(tmp_path))
    assert first.path != second.path
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o700
    first.publish(snapshot_of(2))
    assert semconv.REQUEST_DURATION.name not in merge(second.gather(Snapshot(0, 0.0, {})))
    first.leave()
    second.leave()


def test_a_directory_others_can_write_or_a_planted_link_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / directory_name("s")
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    with pytest.raises(PermissionError):
        Share("s", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "members").write_text("keep")
    links = tmp_path / "links"
    links.mkdir(mode=0o700)
    os.symlink(elsewhere, links / directory_name("s"))
    with pytest.raises(OSError):
        Share("s", str(links))  # never followed
    assert sorted(p.name for p in elsewhere.iterdir()) == ["members"]
    assert (elsewhere / "members").read_text() == "keep"


def test_workers_that_come_and_go_leave_one_retired_file_not_one_each(tmp_path: Path) -> None:
    holder = Share("s", str(tmp_path))
    for _ in range(20):
        process, leave = start(tmp_path, 1)
        if process.pid is not None and len(os.listdir(holder.path)) % 2:
            os.kill(process.pid, signal.SIGKILL)
        else:
            leave.set()
        process.join(10)
        totals(holder)  # a scrape now and then folds the gone
    assert totals(holder)[:2] == (20, 20)
    names = sorted(os.listdir(holder.path))
    assert [n for n in names if n.endswith(".snap")] == ["retired.snap"], names  # the holder published nothing
    assert len((Path(holder.path) / "retired.snap").read_bytes()) < 4096
    holder.leave()
