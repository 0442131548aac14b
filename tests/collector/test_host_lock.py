"""One collector per host and service: device- and host-level readings from the lock's holder, taken
over by another process within two intervals when the holder is killed; per-process readings from
all. The lock lives in a private runtime directory, and nothing planted there or in the temp
directory is followed or written to."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from llmobs._collector.host_lock import HostLock, lock_name
from llmobs._private_dir import runtime_directory
from tests.collector.conftest import Host, eventually, names, value
from tests.nvml_stub import H100, uuid

INTERVAL = 0.5  # seconds; the takeover bound below is two of them
DEVICE_AND_HOST = {"system.memory.usage", "hw.power"}
PLANTED = "a file of the user's own\n"


def test_holder_killed_another_takes_over_within_two_intervals(host: Host) -> None:
    host.configure([H100])
    workers = [host.start(export_ms=200, collect_ms=int(INTERVAL * 1000)) for _ in range(3)]
    holder_pid = eventually(host.holder)
    holder = next(w for w in workers if w.pid == holder_pid)
    others = [w for w in workers if w is not holder]
    for worker in workers:  # per-process readings from every process
        host.until(worker, lambda p: value(p, "process.memory.usage"), flush=False)
    host.until(holder, lambda p: names(p) >= DEVICE_AND_HOST, flush=False)  # from two sampler threads
    for worker in others:
        assert not names(host.snapshot(worker)) & DEVICE_AND_HOST

    killed = time.time_ns()
    holder.process.kill()
    holder.process.wait()
    taker = eventually(lambda: next((w for w in others if value(host.snapshot(w), "system.memory.usage")), None))

    points = host.until(taker, lambda p: value(p, "hw.power", {"hw.id": uuid(0)}), flush=False)
    # A counter starts at the first reading of its process: here, the first one as the holder.
    energy = next(p for p in points if p.name == "hw.energy")
    assert (energy.start_time_unix_nano - killed) / 1e9 <= 2 * INTERVAL
    assert host.holder() == taker.pid
    bystander = next(w for w in others if w is not taker)
    assert not names(host.snapshot(bystander)) & DEVICE_AND_HOST


def test_each_service_has_its_own_holder(host: Host) -> None:
    host.configure([H100])
    server = [host.start(service="model-server") for _ in range(2)]
    batch = host.start(service="nightly batch/job")
    holders = {eventually(lambda: host.holder("model-server")), eventually(lambda: host.holder("nightly batch/job"))}
    assert len(holders) == 2 and batch.pid in holders

    # A holder reports device and host readings, each from a sampler thread of its own (one can be an
    # export ahead of the other): wait for both. The other server worker reports neither.
    (holder,) = [w for w in server if w.pid in holders]
    (bystander,) = [w for w in server if w is not holder]
    host.until(holder, lambda p: names(p) >= DEVICE_AND_HOST)
    assert not names(host.until(bystander, lambda p: value(p, "process.memory.usage"))) & DEVICE_AND_HOST
    points = host.until(batch, lambda p: names(p) >= DEVICE_AND_HOST)
    assert value(points, "hw.power", {"hw.id": uuid(0)}) == pytest.approx(245.0)


def test_one_holder_at_a_time_and_release_hands_over(tmp_path: Path) -> None:
    run = str(tmp_path / "run")
    first, second = HostLock("svc", run), HostLock("svc", run)
    assert first.acquire() and first.acquire()
    assert not second.acquire()
    assert HostLock("other", run).acquire()
    first.release()
    assert second.acquire()
    second.release()
    assert os.stat(run).st_mode & 0o777 == 0o700
    assert os.stat(first.path).st_mode & 0o777 == 0o600 and os.path.getsize(first.path) == 0


def test_an_existing_lock_file_is_locked_as_it_is(tmp_path: Path) -> None:
    lock = HostLock("svc", str(tmp_path / "run"))
    os.mkdir(lock.directory, 0o700)
    Path(lock.path).write_text(PLANTED)
    assert lock.acquire()
    assert Path(lock.path).read_text() == PLANTED  # neither truncated nor written to
    lock.release()


def test_lock_names_per_service() -> None:
    assert lock_name(None) != lock_name("default")
    assert lock_name("summarizer").startswith("collector-summarizer-")
    assert lock_name("a/b") != lock_name("a_b")
    for service in ("../../etc/passwd", "x" * 10_000, "\ud800 \n\x00"):
        name = lock_name(service)
        assert "/" not in name and "\x00" not in name and len(name) < 100 and name.isascii()


def test_runtime_directory_is_xdg_when_private_else_llmobs_own_in_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fallback = str(tmp_path / f"llmobs-{os.geteuid()}")
    xdg = tmp_path / "xdg"
    xdg.mkdir(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert runtime_directory() == str(xdg)
    xdg.chmod(0o755)
    assert runtime_directory() == fallback
    (tmp_path / "link").symlink_to(tmp_path / "xdg")
    xdg.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "link"))
    assert runtime_directory() == fallback
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative")
    assert runtime_directory() == fallback
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert runtime_directory() == fallback


def plant(path: Path) -> Path:
    """A symlink at ``path`` to a file of the user's own; returns the target."""
    target = path.parent / f"target-of-{path.name}"
    target.write_text(PLANTED)
    path.symlink_to(target)
    return target


def test_planted_symlinks_leave_their_targets_untouched(host: Host) -> None:
    host.configure([H100])
    old = plant(host.tmp_path / f"llmobs-collector-{os.getuid()}.lock")  # where the lock used to be
    host.runtime.mkdir(0o700)
    new = plant(host.lock_file())
    child = host.start()
    # The lock cannot be had: this process reports device and host readings, as all would.
    host.until(child, lambda p: names(p) >= DEVICE_AND_HOST)
    assert old.read_text() == new.read_text() == PLANTED
    assert "cannot use the lock file" in child.finish()


def not_ours_alone(kind: str, path: Path) -> None:
    """Put a runtime directory at ``path`` that llmobs must refuse."""
    if kind == "link":
        (path.parent / "elsewhere").mkdir(0o700)
        path.symlink_to(path.parent / "elsewhere")
        return
    path.mkdir()
    if kind == "world-writable":
        path.chmod(0o777)
    elif os.geteuid() != 0:
        pytest.skip("giving a directory to another user takes root")
    else:
        os.chown(path, 65534, 65534)
        path.chmod(0o700)


@pytest.mark.parametrize("kind", ["world-writable", "foreign", "link"])
def test_a_runtime_directory_not_ours_alone_is_refused(host: Host, kind: str) -> None:
    host.configure([H100])
    not_ours_alone(kind, host.runtime)
    child = host.start()
    host.until(child, lambda p: names(p) >= DEVICE_AND_HOST)  # reporting, as every process then does
    assert not list(host.runtime.iterdir())
    assert "cannot use the lock file" in child.finish()


def test_forked_child_drops_the_inherited_lock_without_unlocking_the_parent(tmp_path: Path) -> None:
    path = str(tmp_path / "run")
    parent = HostLock(None, path)
    assert parent.acquire()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's lock must still hold, and go with the parent alone
        held_by_parent = not HostLock(None, path).acquire()
        os.write(ready_w, b"x")
        os.read(go_r, 1)
        os._exit(0 if held_by_parent and HostLock(None, path).acquire() else 1)
    os.read(ready_r, 1)
    parent.release()
    os.write(go_w, b"x")
    assert os.waitpid(pid, 0)[1] == 0
    for fd in (ready_r, ready_w, go_r, go_w):
        os.close(fd)
