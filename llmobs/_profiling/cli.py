"""Profile the next monitored calls of a running process (torch.profiler traces, or cProfile stats)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile

from . import MAX_CALLS
from .control import read_message, send_message, socket_path

ANSWER_TIMEOUT = 30.0  # the process may first start torch's profiler (about 1 s, more under load)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pid", type=int, help="the process to profile (it runs llmobs.init())")
    parser.add_argument("--calls", type=int, default=20, help="how many calls to profile (default 20)")
    parser.add_argument("--model", help="profile calls of this model only")
    parser.add_argument("--out", help="directory for the files, created 0700 (default: the process's own)")
    parser.add_argument("--min-duration", type=float, help="seconds: only calls at least this long count")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not 1 <= args.calls <= MAX_CALLS:
        parser.error(f"--calls must be from 1 to {MAX_CALLS}")
    if args.min_duration is not None and not args.min_duration >= 0:
        parser.error("--min-duration must be a number of seconds >= 0")
    ask = {
        "calls": args.calls,
        "model": args.model,
        "out_dir": None if args.out is None else os.path.abspath(args.out),
        "min_duration": args.min_duration,
    }
    path = next((p for p in _sockets(args.pid) if os.path.exists(p)), None)
    if path is None:
        print(
            f"llmobs profile: process {args.pid} has no profiling trigger: it is not running, has not called "
            "llmobs.init(), runs with LLMOBS_PROFILING=off, or belongs to another user",
            file=sys.stderr,
        )
        return 1
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(ANSWER_TIMEOUT)
            conn.connect(path)
            send_message(conn, ask)
            reply = read_message(conn)
    except (OSError, ValueError) as exc:
        print(f"llmobs profile: no answer from process {args.pid} ({exc})", file=sys.stderr)
        return 1
    if reply is None or "directory" not in reply:
        print(f"llmobs profile: {(reply or {}).get('error', 'no answer')}", file=sys.stderr)
        return 1
    print(f"profiling the next {args.calls} calls of process {args.pid}; the files go to {reply['directory']}")
    return 0


def _sockets(pid: int) -> list[str]:
    """Where ``pid``'s socket may be: in this user's runtime directory; for root, also in the usual
    runtime directories of the process's owner."""
    paths = [socket_path(pid)]
    if os.geteuid() == 0:
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            return paths
        for directory in (f"/run/user/{uid}", os.path.join(tempfile.gettempdir(), f"llmobs-{uid}")):
            paths.append(socket_path(pid, directory))
    return paths
