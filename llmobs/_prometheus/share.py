"""How the processes of one service on one host (pre-fork workers) hand their snapshots to whichever
of them answers a scrape, in a private directory of their own:

- ``members``: every process taking part holds a shared ``flock`` on it. The first to arrive when
  nobody holds it wipes what a crashed run left; the last to leave removes the directory.
- ``<id>.snap``: a process's latest cumulative snapshot, replaced atomically every interval and at exit.
- ``<id>.alive``: locked by that process for its whole life; the kernel drops the lock when it dies.
- ``retired.snap``: the counters and histograms of processes that are gone, folded in once, so that no
  counter goes backwards when a worker exits or is killed, and the directory stays as small as the
  live workers.
- ``serve.lock``: held by the one process that binds the scrape port.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import re
import stat
import threading
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from .._private_dir import open_private_directory, runtime_directory, service_key
from .snapshot import Snapshot, merge, monotonic

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_LOCK = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SNAPSHOT = re.compile(r"[0-9]+-[0-9a-f]{12}\.snap")
RETIRED = "retired.snap"

_shares: weakref.WeakSet[Share] = weakref.WeakSet()


def directory_name(service: str | None) -> str:
    return f"prometheus-{service_key(service)}"


class Share:
    """This process's part in the merged scrape of ``service``. OSError from the constructor when the
    directory cannot be used privately (then this process serves only its own numbers)."""

    def __init__(self, service: str | None, root: str | None = None) -> None:
        root = root or runtime_directory()
        self.path = os.path.join(root, directory_name(service))
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._pid = os.getpid()
        self._folding = threading.Lock()
        parent = open_private_directory(root)
        try:
            self._dir = open_private_directory(directory_name(service), dir_fd=parent)
        finally:
            os.close(parent)
        self._members = _lock_file(self._dir, "members")
        self._alive: int | None = None
        self._serving: int | None = None
        _shares.add(self)
        self._join()

    def _join(self) -> None:
        try:
            fcntl.flock(self._members, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._members, fcntl.LOCK_SH)  # waits while a first arrival wipes
        else:
            self._wipe(keep="members")
            fcntl.flock(self._members, fcntl.LOCK_SH)
        self._alive = _lock_file(self._dir, f"{self.id}.alive")
        fcntl.flock(self._alive, fcntl.LOCK_EX)

    def publish(self, snapshot: Snapshot) -> None:
        """Replace this process's snapshot (atomically: a reader sees the old one or the new one)."""
        _write(self._dir, f"{self.id}.snap", snapshot.dumps())

    def serve(self) -> bool:
        """True when this process holds (now or already) the right to bind the scrape port."""
        if self._serving is None:
            fd = _lock_file(self._dir, "serve.lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._serving = fd
        return True

    def release_serving(self) -> None:
        fd, self._serving = self._serving, None
        if fd is not None:
            os.close(fd)

    def gather(self, own: Snapshot) -> list[Snapshot]:
        """Every process's latest snapshot (``own`` for this one, fresher than its file), and the
        retired totals; the snapshots of processes that are gone are folded into those first."""
        with self._folding, _exclusive(self._dir, "fold.lock"):
            snapshots, retired = [own], _retired(self._dir)
            for name in sorted(os.listdir(self._dir)):
                process = name.removesuffix(".snap")
                if not _SNAPSHOT.fullmatch(name) or process == self.id or process in retired[1]:
                    continue
                found = _load(self._dir, name)
                if found is not None and not self._fold_if_gone(process, found, retired):
                    snapshots.append(found)
            self._forget_folded(retired)
            return [*snapshots, retired[0]]

    def _fold_if_gone(self, process: str, snapshot: Snapshot, retired: tuple[Snapshot, set[str]]) -> bool:
        """Fold ``snapshot`` into the retired totals when its process is gone; True then."""
        try:
            fd = os.open(f"{process}.alive", _READ, dir_fd=self._dir)
        except FileNotFoundError:
            fd = None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # alive
            finally:
                os.close(fd)
        folded, ids = retired
        folded.families = monotonic(merge([folded, Snapshot(snapshot.pid, 0.0, monotonic(snapshot.families))]))
        ids.add(process)
        _write(self._dir, RETIRED, marshal.dumps((folded.dumps(), sorted(ids))))
        for suffix in (".snap", ".alive"):
            with suppress(FileNotFoundError):
                os.unlink(f"{process}{suffix}", dir_fd=self._dir)
        return True

    def _forget_folded(self, retired: tuple[Snapshot, set[str]]) -> None:
        """Ids whose files are gone need not be remembered: the retired file stays small."""
        present = {name.removesuffix(".snap") for name in os.listdir(self._dir)}
        stale = retired[1] - present
        if stale:
            retired[1].difference_update(stale)
            _write(self._dir, RETIRED, marshal.dumps((retired[0].dumps(), sorted(retired[1]))))

    def leave(self) -> None:
        """Stop taking part; the snapshot stays for the others. The last one out removes the directory."""
        self.release_serving()
        if self._alive is not None:
            os.close(self._alive)
            self._alive = None
        fcntl.flock(self._members, fcntl.LOCK_UN)
        try:
            fcntl.flock(self._members, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            self._wipe(keep="")
            with suppress(OSError):
                os.rmdir(self.path)
        os.close(self._members)
        os.close(self._dir)

    def _wipe(self, keep: str) -> None:
        for name in os.listdir(self._dir):
            if name != keep:
                with suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=self._dir)

    def forget(self) -> None:
        """In a forked child: close the inherited descriptors without unlocking (the locks belong to
        the open files, which the parent still uses)."""
        for fd in (self._alive, self._serving, self._members, self._dir):
            if fd is not None:
                with suppress(OSError):
                    os.close(fd)
        self._alive = self._serving = None


@contextmanager
def _exclusive(directory: int, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``name`` across processes (one folds the snapshots of the gone at a time)."""
    fd = _lock_file(directory, name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _lock_file(directory: int, name: str) -> int:
    fd = os.open(name, _LOCK, 0o600, dir_fd=directory)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PermissionError(f"{name} is not a regular file")
    return fd


def _write(directory: int, name: str, data: bytes) -> None:
    temporary = f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    fd = os.open(temporary, _WRITE, 0o600, dir_fd=directory)
    try:
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(data)
    finally:
        os.close(fd)
    os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)


def _read(directory: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, _READ, dir_fd=directory)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as found:
        if not stat.S_ISREG(os.fstat(found.fileno()).st_mode):
            return None
        return found.read()


def _load(directory: int, name: str) -> Snapshot | None:
    data = _read(directory, name)
    if data is None:
        return None
    try:
        return Snapshot.loads(data)
    except (ValueError, EOFError, TypeError):
        return None  # another llmobs version's file, or a partial write from before a crash


def _retired(directory: int) -> tuple[Snapshot, set[str]]:
    data = _read(directory, RETIRED)
    if data is not None:
        with suppress(ValueError, EOFError, TypeError):
            body, ids = marshal.loads(data)
            return Snapshot.loads(body), set(ids)
    return Snapshot(0, 0.0, {}), set()


def _after_fork_in_child() -> None:
    for share in list(_shares):
        if share._pid != os.getpid():
            share.forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
