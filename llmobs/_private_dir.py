"""Where llmobs keeps the files its processes share on one host (locks, workers' snapshots): a runtime
directory private to this user, checked before anything in it is opened, and every file in it opened
relative to that checked descriptor, never through a symlink.

The directory is ``$XDG_RUNTIME_DIR`` when it is private to this user, else ``llmobs-<uid>`` in the
temp directory, created 0700. A directory that is not ours alone is refused: other users could plant
links there.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from contextlib import suppress

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def runtime_directory() -> str:
    """``$XDG_RUNTIME_DIR`` when it is private to this user, else llmobs's own under the temp directory."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    with suppress(OSError):
        if os.path.isabs(xdg) and private(os.lstat(xdg)):
            return xdg
    return os.path.join(tempfile.gettempdir(), f"llmobs-{os.geteuid()}")


def service_key(service: str | None) -> str:
    """``service`` (None: the default service) as a file name: readable where the name is, and a
    hash to keep names apart."""
    text = service or ""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:48]
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable}-{digest}"


def open_private_directory(path: str, dir_fd: int | None = None) -> int:
    """A descriptor of ``path`` (relative to ``dir_fd`` when given), created 0700 if missing;
    PermissionError when it is not ours alone. Open files relative to it (``dir_fd``): nobody can swap
    the directory after the check."""
    with suppress(FileExistsError):
        os.mkdir(path, 0o700, dir_fd=dir_fd)
    fd = os.open(path, DIRECTORY_FLAGS, dir_fd=dir_fd)
    if not private(os.fstat(fd)):
        os.close(fd)
        raise PermissionError(f"{path} must be a directory of this user with mode 0700")
    return fd


def private(info: os.stat_result) -> bool:
    """A real directory (not a link to one), ours, that nobody else may read, write or enter."""
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077
