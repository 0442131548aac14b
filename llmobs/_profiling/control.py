"""The trigger behind ``llmobs profile PID``: a Unix socket ``profile-<pid>.sock`` (0600) in the
private runtime directory, answered by a daemon thread. Only this user or root can reach it (the
directory is 0700), and on Linux the peer's uid is checked again (SO_PEERCRED). No signal handler."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from contextlib import suppress
from typing import Any

from .._config import ConfigError
from .._failsafe import guarded
from .._private_dir import open_private_directory, runtime_directory

MAX_MESSAGE = 4096
TIMEOUT = 5.0


def socket_path(pid: int, directory: str | None = None) -> str:
    """Where process ``pid`` listens (``directory``: its user's runtime directory)."""
    return os.path.join(directory or runtime_directory(), f"profile-{pid}.sock")


def read_message(conn: socket.socket) -> dict[str, Any] | None:
    """One JSON object on one line, at most MAX_MESSAGE bytes; None when the peer sent nothing."""
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_MESSAGE:
        chunk = conn.recv(MAX_MESSAGE - len(data))
        if not chunk:
            break
        data += chunk
    if not data:
        return None
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message


def send_message(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


class Control:
    """The listening socket of this process and the thread that answers it."""

    def __init__(self) -> None:
        os.close(open_private_directory(runtime_directory()))
        self.pid = os.getpid()
        self.path = socket_path(self.pid)
        _remove_stale(os.path.dirname(self.path))
        with suppress(FileNotFoundError):
            os.unlink(self.path)  # left by an earlier process that had this PID
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._socket.bind(self.path)
            os.chmod(self.path, 0o600)
            self._socket.listen(4)
        except OSError:
            self._socket.close()
            raise
        threading.Thread(target=self._serve, name="llmobs-profiling", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return  # closed by ``close``
            with conn:
                self._answer(conn)

    @guarded(where="profiling trigger")
    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(TIMEOUT)
        # A peer that leaves early (another process's stale-socket check connects and closes at once)
        # is no failure of ours.
        with suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
            reply = _reply(conn)
            if reply is not None:
                send_message(conn, reply)

    def close(self) -> None:
        """Stop answering; the socket file goes too, unless it is the parent's (a forked child)."""
        if self.pid == os.getpid():
            with suppress(FileNotFoundError):
                os.unlink(self.path)
            with suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept
        self._socket.close()


def _reply(conn: socket.socket) -> dict[str, Any] | None:
    """The answer to one request, None for a peer that sent nothing."""
    from . import PLAN

    if not _same_user(conn):
        return {"error": "only the user running this process (or root) may profile it"}
    try:
        ask = read_message(conn)
        if ask is None:
            return None
        return {
            "directory": PLAN.ask(ask.get("calls", 20), ask.get("model"), ask.get("out_dir"), ask.get("min_duration"))
        }
    except (ConfigError, ValueError) as exc:  # json's errors are ValueErrors
        return {"error": str(exc)}


def _remove_stale(directory: str) -> None:
    """Remove the sockets of processes that ended without ``shutdown`` (SIGKILL, or uvicorn's workers,
    which skip exit hooks): nothing listens on them any more. A live one answers and stays."""
    for name in os.listdir(directory):
        if name.startswith("profile-") and name.endswith(".sock"):
            path = os.path.join(directory, name)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(path)
                except ConnectionRefusedError:
                    with suppress(FileNotFoundError):
                        os.unlink(path)
                except OSError:
                    continue


def _same_user(conn: socket.socket) -> bool:
    """The peer runs as this user or as root (Linux); elsewhere the 0700 directory is the check."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    return uid in (0, os.geteuid())
