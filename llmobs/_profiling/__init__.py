"""On-demand profiling of monitored calls: what to capture next (how many calls, of which model,
slower than what) and the automatic rule (a slow call profiles the next calls of its model, once
per cool-down). Idle, a monitored call reads one flag, ``PLAN.armed``; armed, it runs through
``profiled``/``profiled_async``, and at most one call at a time is captured (torch's profiler is one
per process); the others run unprofiled and do not count."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any

from .. import semconv as names
from .._config import ConfigError
from .._failsafe import guarded
from .._handle import Entry
from .store import Store, default_directory

if TYPE_CHECKING:
    from .._call import Site
    from .._config import Settings
    from .capture import Capture
    from .control import Control

logger = logging.getLogger("llmobs")
MAX_CALLS = 1000
DEFAULT_MAX_BYTES = 100 * 2**20


@dataclass
class Request:
    """Profile the next ``calls`` calls (of ``model``; kept when at least ``min_duration`` long)."""

    calls: int
    store: Store
    model: str | None = None
    min_duration: float = 0.0


@dataclass
class Auto:
    """A call of a model over ``threshold`` seconds profiles its next ``calls``, once per ``cooldown``."""

    threshold: float
    calls: int
    cooldown: float
    last: dict[str, float] = field(default_factory=dict)


class Plan:
    """What the next monitored calls should do; ``armed`` is the one field the idle hot path reads."""

    def __init__(self) -> None:
        self.armed = False
        self.request: Request | None = None
        self.auto: Auto | None = None
        self.directory: str | None = None
        self.max_bytes = DEFAULT_MAX_BYTES
        self._lock = threading.Lock()  # changes to the request
        self._busy = threading.Lock()  # held by the one capture in progress
        self._warmed = False

    def configure(self, directory: str | None, max_bytes: int, auto: Auto | None) -> None:
        """Settings from ``init``: the default output directory, its budget, the automatic rule."""
        with self._lock:
            self.directory, self.max_bytes, self.auto = directory, max_bytes, auto
            self.armed = self.request is not None or auto is not None

    def ask(self, calls: int, model: str | None, out_dir: str | None, min_duration: float | None) -> str:
        """Open a request (replacing any open one); its directory, checked. ConfigError when unusable."""
        request = _checked(calls, model, out_dir or self.directory, min_duration, self.max_bytes)
        self._warm_up()
        with self._lock:
            self.request, self.armed = request, True
        where = f" of model {model!r}" if model else ""
        logger.info("llmobs: profiling the next %d calls%s into %s", calls, where, request.store.path)
        return request.store.path

    def cancel(self) -> None:
        """Close the open request (shutdown); the automatic rule stays as configured."""
        with self._lock:
            self.request = None
            self.armed = self.auto is not None

    @guarded(where="profiler start", default=None)
    def begin(self, site: Site) -> tuple[Request, Capture] | None:
        """The capture for this call, started; None when this call is not to be profiled."""
        request = self.request
        if request is None or (request.model is not None and request.model != model_of(site)):
            return None
        if not self._busy.acquire(blocking=False):
            return None  # another call is being captured
        from .capture import new_capture

        try:
            capture = new_capture(site.span_name)
            if capture is None:  # the application's own profiler is running: this call is left alone
                self._busy.release()
                return None
            capture.start()
        except BaseException:
            self._busy.release()
            self._drop(request)  # a failing profiler costs one warning (the boundary's), not one per call
            raise
        return request, capture

    @guarded(where="profiler stop")
    def end(self, site: Site, entry: Entry, started: tuple[Request, Capture] | None, duration: float) -> None:
        """Stop the capture; keep its file when the call was long enough; apply the automatic rule."""
        if started is not None:
            try:
                self._finish(*started, site, entry, duration)
            finally:
                self._busy.release()
        auto = self.auto
        if auto is not None and duration >= auto.threshold:
            self._slow(auto, site, duration)

    def _finish(self, request: Request, capture: Capture, site: Site, entry: Entry, duration: float) -> None:
        try:
            capture.stop()
            if duration < request.min_duration:
                return
            path = capture.save(request.store)
        except BaseException:
            self._drop(request)
            raise
        call = entry[1] if len(entry) > 1 else None
        if call is not None and call.span is not None:
            call.span.set_attribute(names.PROFILE_PATH, path)
        logger.info("llmobs: profiled %r (%.3f s): %s", site.span_name, duration, path)
        request.calls -= 1  # under the busy lock: one capture at a time
        if request.calls <= 0:
            self._drop(request)
            logger.info("llmobs: profiling done; the files are in %s", request.store.path)

    def _slow(self, auto: Auto, site: Site, duration: float) -> None:
        model, now = model_of(site), monotonic()
        with self._lock:
            last = auto.last.get(model)
            if self.request is not None or (last is not None and now - last < auto.cooldown):
                return
            auto.last[model] = now
            self.request = Request(auto.calls, Store(self.directory or default_directory(), self.max_bytes), model)
        logger.info("llmobs: %r took %.3f s: profiling its next %d calls", site.span_name, duration, auto.calls)

    def _drop(self, request: Request) -> None:
        with self._lock:
            if self.request is request:
                self.request = None
                self.armed = self.auto is not None

    @guarded(where="profiler start")
    def _warm_up(self) -> None:
        """torch's profiler takes about a second to start the first time: pay it here, not in a call."""
        torch = sys.modules.get("torch")
        if torch is None or self._warmed or not self._busy.acquire(blocking=False):
            return
        from .capture import warm_up

        try:
            self._warmed = warm_up(torch)
        finally:
            self._busy.release()

    def after_fork_in_child(self) -> None:
        """A forked worker profiles only when asked itself: no inherited request, fresh locks."""
        self._lock, self._busy = threading.Lock(), threading.Lock()
        self.request = None
        self.armed = self.auto is not None


PLAN = Plan()
os.register_at_fork(after_in_child=PLAN.after_fork_in_child)


def _checked(calls: object, model: object, out_dir: object, min_duration: object, max_bytes: int) -> Request:
    if isinstance(calls, bool) or not isinstance(calls, int) or not 1 <= calls <= MAX_CALLS:
        raise ConfigError(f"profile(calls=...) must be a whole number from 1 to {MAX_CALLS}, got {calls!r}")
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigError("profile(model=...) must be a model name (or None for every model)")
    if out_dir is not None and (not isinstance(out_dir, str) or not out_dir):
        raise ConfigError("profile(out_dir=...) must be a directory path (or None for the default)")
    if min_duration is not None and (
        isinstance(min_duration, bool) or not isinstance(min_duration, (int, float)) or not min_duration >= 0
    ):
        raise ConfigError(f"profile(min_duration=...) must be a number of seconds >= 0, got {min_duration!r}")
    store = Store(out_dir or default_directory(), max_bytes)
    try:
        store.check()
    except OSError as exc:
        raise ConfigError(f"profile(out_dir=...): cannot use {store.path} ({exc}); pick a directory of yours") from None
    return Request(calls, store, model, float(min_duration or 0.0))


def model_of(site: Site) -> str:
    """The model a site was decorated with."""
    return str(dict(site.base).get(names.MODEL, ""))


def profile(
    calls: int = 20, *, model: str | None = None, out_dir: str | None = None, min_duration: float | None = None
) -> str:
    """Profile this process's next ``calls`` monitored calls (of ``model`` only; only those lasting at
    least ``min_duration`` seconds count) with torch.profiler, or cProfile without torch; one file per
    call. Returns the output directory. Raises ``ConfigError`` on bad arguments."""
    return PLAN.ask(calls, model, out_dir, min_duration)


def profiled(site: Site, entry: Entry, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Call ``fn`` as the plan says: inside a capture, timed for the automatic rule, or plainly."""
    started = PLAN.begin(site)
    start = perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        PLAN.end(site, entry, started, perf_counter() - start)


async def profiled_async(site: Site, entry: Entry, fn: Callable[..., Awaitable[Any]], args: Any, kwargs: Any) -> Any:
    """``profiled`` for a coroutine function. The capture covers the event loop's thread until the call
    returns, so other tasks that run while it awaits appear in its trace too."""
    started = PLAN.begin(site)
    start = perf_counter()
    try:
        return await fn(*args, **kwargs)
    finally:
        PLAN.end(site, entry, started, perf_counter() - start)


class _Trigger:
    """This process's ``llmobs profile PID`` socket, while llmobs runs with profiling on."""

    control: Control | None = None


@guarded(where="profiling start")
def start(settings: Settings) -> None:
    """Apply ``init``'s settings and open the trigger (LLMOBS_PROFILING=off: neither trigger nor rule)."""
    from .control import Control

    _close_trigger()  # a forked child closes its parent's socket here, then opens its own
    on, auto = settings.profiling, settings.profiling_auto
    rule = Auto(auto, settings.profiling_auto_calls, settings.profiling_auto_cooldown) if on and auto else None
    PLAN.configure(settings.profiling_dir, settings.profiling_max_bytes, rule)
    if on:
        _Trigger.control = Control()


@guarded(where="profiling stop")
def stop() -> None:
    """Close the trigger, any open request and the automatic rule (shutdown): idle again."""
    PLAN.configure(None, DEFAULT_MAX_BYTES, None)
    PLAN.cancel()
    _close_trigger()


def _close_trigger() -> None:
    control, _Trigger.control = _Trigger.control, None
    if control is not None:
        control.close()
