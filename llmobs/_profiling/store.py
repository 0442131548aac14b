"""The directory profiles are written to: private (0700, ours, never entered through a symlink), its
files 0600, and bounded: after each new file the oldest profiles go until the rest fit in the budget."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from .._private_dir import open_private_directory, runtime_directory

SUFFIXES = (".pt.trace.json", ".prof")
MAX_FILES = 1000
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def default_directory() -> str:
    """``profiles`` in llmobs's private runtime directory."""
    return os.path.join(runtime_directory(), "profiles")


class Store:
    """One output directory and its size budget; files are opened relative to the checked directory."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path = os.path.abspath(path)
        self.max_bytes = max_bytes

    def check(self) -> None:
        """Create the directory (and, for the default one, the runtime directory above it) 0700, or
        raise OSError saying why it cannot be used."""
        if self.path == os.path.abspath(default_directory()):
            os.close(open_private_directory(runtime_directory()))
        os.close(open_private_directory(self.path))

    def names(self) -> list[str]:
        fd = open_private_directory(self.path)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    @contextmanager
    def create(self, name: str) -> Iterator[BinaryIO]:
        """A new 0600 file ``name`` for writing."""
        fd = open_private_directory(self.path)
        try:
            out = os.fdopen(os.open(name, _FILE_FLAGS, 0o600, dir_fd=fd), "wb")
        finally:
            os.close(fd)
        with out:
            yield out

    def keep(self, name: str) -> str:
        """Make ``name`` (written by a profiler) 0600, trim the oldest profiles to the budget, and
        return the file's path."""
        fd = open_private_directory(self.path)
        try:
            file = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            try:
                os.fchmod(file, 0o600)
            finally:
                os.close(file)
            self._trim(fd, name)
        finally:
            os.close(fd)
        return os.path.join(self.path, name)

    def _trim(self, fd: int, newest: str) -> None:
        """Delete the oldest profiles until the others fit in ``max_bytes`` and ``MAX_FILES``; the
        newest file always stays (the span that names it was just recorded)."""
        found = []
        for name in os.listdir(fd):
            if name.endswith(SUFFIXES):
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISREG(info.st_mode):
                    found.append((name == newest, info.st_mtime_ns, name, info.st_size))
        found.sort()
        total, count = sum(size for *_, size in found), len(found)
        for is_newest, _, name, size in found:
            if is_newest or (total <= self.max_bytes and count <= MAX_FILES):
                break
            os.unlink(name, dir_fd=fd)
            total, count = total - size, count - 1
