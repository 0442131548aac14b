"""One collector per host (per user) takes device- and host-level readings: the process holding
an exclusive ``flock`` on a file in the temp directory. The kernel drops the lock when its holder
dies, however it dies; the others try again every interval and one of them takes over."""

from __future__ import annotations

import fcntl
import os
import tempfile
import weakref
from contextlib import suppress

from .._failsafe import warn_once

_locks: weakref.WeakSet[HostLock] = weakref.WeakSet()


class HostLock:
    """The lock file; ``acquire`` is tried every interval by processes that do not hold it yet."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.path.join(tempfile.gettempdir(), f"llmobs-collector-{os.getuid()}.lock")
        self._fd: int | None = None
        self._pid = os.getpid()
        _locks.add(self)

    def acquire(self) -> bool:
        """True when this process holds the lock (now or already); never blocks."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            # Better every process reporting (duplicates) than none.
            warn_once(
                "host-lock",
                "llmobs: cannot open %s (%s); every process reports device and host readings",
                self.path,
                exc,
            )
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        with suppress(OSError):  # who collects, for people (and tests) to read
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Let another process take over (closing the only descriptor drops the lock)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _forget(self) -> None:
        """In a forked child: close the inherited descriptor without unlocking, which would also
        unlock the parent (a flock belongs to the open file, which parent and child share)."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None


def _after_fork_in_child() -> None:
    for lock in list(_locks):
        if lock._pid != os.getpid():
            lock._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
