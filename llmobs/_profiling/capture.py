"""One profiled call: ``torch.profiler`` when the application already imported torch (CPU, and CUDA
once the application initialized it), else ``cProfile``. A capture runs on the calling thread only:
both profilers see the thread that started them, so each call is captured where it runs."""

from __future__ import annotations

import cProfile
import marshal
import os
import socket
import sys
import time
from contextlib import ExitStack
from typing import Any, Protocol

from .store import Store

TRACE_SUFFIX = ".pt.trace.json"
STATS_SUFFIX = ".prof"
MARKER = "llmobs.profile"
"""The ``record_function`` range around each profiled call: ``llmobs.profile <operation> <model>``."""


class Capture(Protocol):
    """A profiler around one call: ``start`` before it, ``stop`` after it, ``save`` if it is kept."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def save(self, store: Store) -> str: ...


def worker_name() -> str:
    """TensorBoard's worker name for this process (its trace handler's default): ``host_pid``."""
    return f"{socket.gethostname()}_{os.getpid()}"


def new_capture(label: str) -> Capture | None:
    """A torch capture when torch is already imported (llmobs never imports it), else cProfile; None
    while the application runs a profiler of its own, which a second one would break: two torch
    profilers at once crash the process (torch 2.13), and cProfile would replace this thread's."""
    torch = sys.modules.get("torch")
    if torch is None:
        return CProfileCapture() if sys.getprofile() is None else None
    return None if torch_profiler_running(torch) else TorchCapture(torch, label)


def torch_profiler_running(torch: Any) -> bool:
    """A torch profiler runs in this process, on any thread (torch's own process-wide flag)."""
    return bool(getattr(torch.autograd.profiler, "_is_profiler_enabled", False))


def warm_up(torch: Any) -> bool:
    """Start and stop torch's profiler once: its first start takes about a second, better paid here
    than inside a call. False while another profiler runs."""
    if torch_profiler_running(torch):
        return False
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
        pass
    return True


class TorchCapture:
    """``torch.profiler.profile`` around the call, written by ``tensorboard_trace_handler``."""

    def __init__(self, torch: Any, label: str) -> None:
        self._torch = torch
        self._label = label
        self._stack = ExitStack()
        self._profiler: Any = None

    def start(self) -> None:
        profiler = self._torch.profiler
        activities = [profiler.ProfilerActivity.CPU]
        if self._torch.cuda.is_initialized():  # never initialize CUDA ourselves
            activities.append(profiler.ProfilerActivity.CUDA)
        self._profiler = self._stack.enter_context(profiler.profile(activities=activities))
        self._stack.enter_context(profiler.record_function(f"{MARKER} {self._label}"))

    def stop(self) -> None:
        self._stack.close()

    def save(self, store: Store) -> str:
        before = set(store.names())
        self._torch.profiler.tensorboard_trace_handler(store.path, worker_name())(self._profiler)
        written = [name for name in store.names() if name not in before and name.endswith(TRACE_SUFFIX)]
        mine = max(written)  # captures are one at a time, so the one new file of this worker is ours
        return store.keep(mine)


class CProfileCapture:
    """``cProfile`` around the call, saved as ``pstats`` data (``python -m pstats FILE``, snakeviz)."""

    def __init__(self) -> None:
        self._profile = cProfile.Profile()

    def start(self) -> None:
        self._profile.enable()

    def stop(self) -> None:
        self._profile.disable()

    def save(self, store: Store) -> str:
        self._profile.create_stats()
        name = f"{worker_name()}.{time.time_ns()}{STATS_SUFFIX}"
        with store.create(name) as out:  # what Profile.dump_stats writes, into a 0600 file
            marshal.dump(self._profile.stats, out)
        return store.keep(name)
