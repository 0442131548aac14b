"""One collector per host and service takes device- and host-level readings: the process holding an
exclusive ``flock`` on the service's lock file in a private runtime directory. The kernel drops the
lock when its holder dies, however it dies; the others try again every interval and one takes over.

The lock file, in llmobs's private runtime directory (``_private_dir``), is never written to
(``lslocks`` names the holder), never truncated, and never opened through a symlink.
"""

from __future__ import annotations

import fcntl
import os
import stat
import weakref

from .._failsafe import warn_once
from .._private_dir import open_private_directory, runtime_directory, service_key

_locks: weakref.WeakSet[HostLock] = weakref.WeakSet()

# O_NONBLOCK: a FIFO in the lock file's place must not block the open (it is then refused).
_FILE_FLAGS = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class HostLock:
    """The lock of ``service`` (None: the default service); ``acquire`` is tried every interval by
    processes that do not hold it yet. ``directory`` replaces the runtime directory (tests)."""

    def __init__(self, service: str | None, directory: str | None = None) -> None:
        self.directory = directory or runtime_directory()
        self.name = lock_name(service)
        self._fd: int | None = None
        self._pid = os.getpid()
        _locks.add(self)

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.name)

    def acquire(self) -> bool:
        """True when this process holds the lock (now or already); never blocks."""
        if self._fd is not None:
            return True
        try:
            fd = _open_lock_file(self.directory, self.name)
        except OSError as exc:
            # Better every process reporting (duplicates) than none.
            warn_once(
                "host-lock",
                "llmobs: cannot use the lock file %s (%s); every process reports device and host readings",
                self.path,
                exc,
            )
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
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


def lock_name(service: str | None) -> str:
    return f"collector-{service_key(service)}.lock"


def _open_lock_file(directory: str, name: str) -> int:
    """The lock file's descriptor; OSError when the directory or the file is not what it must be."""
    parent = open_private_directory(directory)
    try:
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
    finally:
        os.close(parent)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise PermissionError(f"{name} is not a regular file of this user")
    return fd


def _after_fork_in_child() -> None:
    for lock in list(_locks):
        if lock._pid != os.getpid():
            lock._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
