"""One collector per host: device- and host-level readings from the lock's holder, taken over by
another process within two intervals when the holder is killed; per-process readings from all."""

from __future__ import annotations

import os
import time
from pathlib import Path

from llmobs._collector.host_lock import HostLock
from tests.collector.conftest import Host, eventually, names, value
from tests.nvml_stub import H100, uuid

INTERVAL = 0.5  # seconds; the takeover bound below is two of them


def test_holder_killed_another_takes_over_within_two_intervals(host: Host) -> None:
    host.configure([H100])
    workers = [host.start(export_ms=200, collect_ms=int(INTERVAL * 1000)) for _ in range(3)]
    holder_pid = int(eventually(lambda: host.lock_file.read_text().strip()))
    holder = next(w for w in workers if w.pid == holder_pid)
    others = [w for w in workers if w is not holder]
    for worker in workers:  # per-process readings from every process
        host.until(worker, lambda p: value(p, "process.memory.usage"), flush=False)
    assert "system.memory.usage" in names(
        host.until(holder, lambda p: value(p, "hw.power", {"hw.id": uuid(0)}), flush=False)
    )
    for worker in others:
        assert not names(host.snapshot(worker)) & {"system.memory.usage", "hw.power"}

    killed = time.time_ns()
    holder.process.kill()
    holder.process.wait()
    taker = eventually(lambda: next((w for w in others if value(host.snapshot(w), "system.memory.usage")), None))

    points = host.until(taker, lambda p: value(p, "hw.power", {"hw.id": uuid(0)}), flush=False)
    # A counter starts at the first reading of its process: here, the first one as the holder.
    energy = next(p for p in points if p.name == "hw.energy")
    assert (energy.start_time_unix_nano - killed) / 1e9 <= 2 * INTERVAL
    assert int(host.lock_file.read_text()) == taker.pid
    bystander = next(w for w in others if w is not taker)
    assert not names(host.snapshot(bystander)) & {"system.memory.usage", "hw.power"}


def test_one_holder_at_a_time_and_release_hands_over(tmp_path: Path) -> None:
    first, second = HostLock(str(tmp_path / "lock")), HostLock(str(tmp_path / "lock"))
    assert first.acquire() and first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_forked_child_drops_the_inherited_lock_without_unlocking_the_parent(tmp_path: Path) -> None:
    path = str(tmp_path / "lock")
    parent = HostLock(path)
    assert parent.acquire()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's lock must still hold, and go with the parent alone
        held_by_parent = not HostLock(path).acquire()
        os.write(ready_w, b"x")
        os.read(go_r, 1)
        os._exit(0 if held_by_parent and HostLock(path).acquire() else 1)
    os.read(ready_r, 1)
    parent.release()
    os.write(go_w, b"x")
    assert os.waitpid(pid, 0)[1] == 0
    for fd in (ready_r, ready_w, go_r, go_w):
        os.close(fd)
