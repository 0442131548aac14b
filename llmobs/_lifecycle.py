"""What ``init`` builds and ``shutdown`` tears down: the registry instruments record into, the
tracer, and the export threads. Recording sites re-bind when ``generation`` changes."""

from __future__ import annotations

import atexit
import functools
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from . import _config
from ._aggregation import NOOP, Registry, Series
from ._attributes import Attributes
from ._failsafe import internal_error, logger
from ._version import __version__
from .semconv import Instrument

if TYPE_CHECKING:
    # The SDK's resources module imports psutil: loaded at init, not when llmobs is imported.
    from opentelemetry.sdk.resources import Resource

    from ._collector import Collector
    from ._periodic import PeriodicExport


class _Disabled:
    """The registry of a disabled or shut-down llmobs: every series is a no-op."""

    max_series = 0

    def series(self, instrument: Instrument, attributes: Attributes) -> Series:
        return NOOP


DISABLED = _Disabled()
Recording = Registry | _Disabled


class State:
    """The live configuration. Reads on the hot path are plain attribute loads."""

    def __init__(self) -> None:
        # Before init, calls are aggregated so that init exports them; nothing leaves the process.
        self.registry: Recording = Registry()
        self.tracer: trace.Tracer | None = None
        self.generation = 0
        self.settings: _config.Settings | None = None
        self.exports: list[PeriodicExport] = []
        self.tracer_provider: Any = None
        self.resource: Resource | None = None
        self.span_exporters: list[Any] = []
        self.collector: Collector | None = None
        self.lock = threading.RLock()
        self.atexit_registered = False


state = State()


def init(service_name: str | None = None, **options: Any) -> None:
    """Configure llmobs from arguments, then ``OTEL_*``/``LLMOBS_*`` variables; start exporting.

    Safe to call twice (the second call changes nothing). Raises ``ConfigError`` on bad settings.
    """
    settings = _config.load({"service_name": service_name, **options})
    with state.lock:
        if state.settings is not None:
            if settings != state.settings:
                logger.warning(
                    "llmobs: init() was already called; the new settings are ignored "
                    "(call llmobs.shutdown() first to change them)"
                )
            return
        try:
            _start(settings)
        except Exception as exc:
            shutdown(timeout=0)  # nothing half-started stays behind; a corrected init() starts afresh
            raise _config.ConfigError(
                f"llmobs could not start its exporters ({type(exc).__name__}: {exc}); "
                "check the OTEL_EXPORTER_OTLP_* variables"
            ) from exc
        if not state.atexit_registered:
            state.atexit_registered = True
            atexit.register(shutdown)


def _start(
    settings: _config.Settings,
    metric_exporters: Sequence[Any] = (),
    span_exporters: Sequence[Any] = (),
    resource: Resource | None = None,
) -> None:
    """Build everything ``settings`` asks for; the exporters given here come in addition
    (``llmobs.testing`` passes in-memory ones)."""
    state.settings = settings
    if settings.disabled:
        state.registry, state.tracer = DISABLED, None
    else:
        state.resource = resource = resource or _resource(settings)
        state.registry = _registry(settings, resource, metric_exporters)
        state.tracer = _tracer(settings, resource, span_exporters)
        if settings.gpu or settings.host:
            from ._collector import Collector

            state.collector = Collector(settings, state.registry)
    state.generation += 1


def _resource(settings: _config.Settings) -> Resource:
    attributes: dict[str, Any] = dict(settings.resource_attributes)
    if settings.service_name:
        attributes["service.name"] = settings.service_name
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create(attributes)
    if "service.instance.id" not in resource.attributes:
        resource = _new_instance(resource)
    return resource


def _new_instance(resource: Resource) -> Resource:
    """``resource`` with a fresh ``service.instance.id``: each process, each pre-fork worker too,
    exports as its own instance."""
    from opentelemetry.sdk.resources import Resource

    return resource.merge(Resource({"service.instance.id": str(uuid.uuid4())}))


def _registry(settings: _config.Settings, resource: Resource, extra: Sequence[Any]) -> Registry:
    provider = metrics.get_meter_provider()
    if _installed(provider):
        return Registry(settings.max_series, meter=provider.get_meter("llmobs", __version__))
    registry = state.registry if isinstance(state.registry, Registry) else Registry()
    registry.max_series = settings.max_series
    if settings.metrics_otlp is not None:
        from ._otlp import metric_exporter

        target = settings.metrics_otlp
        _export(registry, metric_exporter(target), resource, target.temporality != "cumulative", settings)
    if settings.summary:
        from ._summary import SummaryExporter

        _export(registry, SummaryExporter(), resource, True, settings)
    for exporter in extra:
        _export(registry, exporter, resource, False, settings)
    return registry


def _export(registry: Registry, exporter: Any, resource: Resource, delta: bool, settings: _config.Settings) -> None:
    from ._periodic import PeriodicExport
    from ._points import Points

    state.exports.append(
        PeriodicExport(registry, exporter, Points(resource, delta), settings.export_interval, settings.export_timeout)
    )


def _tracer(settings: _config.Settings, resource: Resource, extra: Sequence[Any]) -> trace.Tracer | None:
    if settings.traces is False:
        return None
    provider = trace.get_tracer_provider()
    if _installed(provider):
        return provider.get_tracer("llmobs", __version__)
    if settings.traces_otlp is None and not settings.traces_console and not extra:
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    own = TracerProvider(resource=resource, shutdown_on_exit=False)
    if settings.traces_otlp is not None:
        from ._otlp import span_exporter

        state.span_exporters.append(span_exporter(settings.traces_otlp))
    if settings.traces_console:
        state.span_exporters.append(ConsoleSpanExporter())
    state.span_exporters.extend(extra)
    for exporter in state.span_exporters:
        own.add_span_processor(BatchSpanProcessor(exporter))
    state.tracer_provider = own
    return own.get_tracer("llmobs", __version__)


def _installed(provider: object) -> bool:
    """True when the application set a real global provider (e.g. via opentelemetry-instrument)."""
    return type(provider).__name__ not in (
        "ProxyTracerProvider",
        "_ProxyMeterProvider",
        "NoOpTracerProvider",
        "NoOpMeterProvider",
    )


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop within ``timeout`` seconds (default 5, or LLMOBS_SHUTDOWN_TIMEOUT).

    Idempotent; recording afterwards is a silent no-op. Returns False when the time ran out first.
    """
    with state.lock:
        settings, exports, provider, collector = state.settings, state.exports, state.tracer_provider, state.collector
        span_exporters, state.span_exporters = state.span_exporters, []
        if settings is None:
            return True
        state.registry, state.tracer, state.exports, state.tracer_provider = DISABLED, None, [], None
        state.settings, state.collector = None, None
        state.generation += 1
    budget = settings.shutdown_timeout if timeout is None else timeout
    deadline = time.monotonic() + budget
    # In parallel, so that one stuck exporter cannot eat the others' share of the budget.
    tasks: list[Callable[[], object]] = [functools.partial(e.shutdown, deadline) for e in exports]
    if provider is not None:
        tasks.append(functools.partial(_stop_tracing, provider, span_exporters, deadline))
    if collector is not None:
        tasks.append(functools.partial(collector.stop, deadline))
    finished = _run_until(tasks, deadline)
    if not finished:
        logger.warning("llmobs: shutdown gave up after %.1fs; telemetry not yet exported is lost", budget)
    return finished


def force_flush(timeout: float = 5.0) -> bool:
    """Export everything recorded so far now (end of a batch job, before a fork, in tests)."""
    with state.lock:
        exports, provider = list(state.exports), state.tracer_provider
    tasks: list[Callable[[], object]] = [e.export_once for e in exports]
    if provider is not None:
        tasks.append(functools.partial(provider.force_flush, int(timeout * 1000)))
    return _run_until(tasks, time.monotonic() + timeout)


def _run_until(tasks: list[Callable[[], object]], deadline: float) -> bool:
    """Run ``tasks`` on threads until ``deadline``; True when all finished in time and none
    returned False."""
    results: list[bool] = []

    def run(task: Callable[[], object]) -> None:
        try:
            results.append(task() is not False)
        except Exception:
            internal_error("flush or shutdown")
            results.append(False)

    workers = [threading.Thread(target=run, args=(task,), daemon=True) for task in tasks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    return len(results) == len(tasks) and all(results)


def _stop_tracing(provider: Any, exporters: list[Any], deadline: float) -> bool:
    """Flush and stop the span pipeline; past ``deadline``, stop its exporters' retries instead."""
    stopper = threading.Thread(target=provider.shutdown, daemon=True)
    stopper.start()
    stopper.join(max(0.0, deadline - time.monotonic()))
    if not stopper.is_alive():
        return True
    for exporter in exporters:
        try:
            # The SDK's BatchSpanProcessor joins its worker without a timeout; a stuck export
            # there only ends when the exporter is shut down under it.
            exporter.shutdown()
        except Exception:
            internal_error("span exporter shutdown")
    return False


def _after_fork_in_child() -> None:
    """A pre-fork worker starts over before it serves anything: fresh locks, empty series, its own
    instance id, new exporter threads and channels.

    The parent's resource is reused with a new instance id rather than detected again: detection
    runs on a thread pool whose lock other at-fork handlers may not have re-armed yet (preloaded
    gunicorn workers hung there).
    """
    state.lock = threading.RLock()
    if isinstance(state.registry, Registry):
        # A call in flight in the forking thread still ends into the parent's series: their lock
        # may have been held by another thread of the parent at fork time.
        state.registry.reinit_lock()
    settings, resource = state.settings, state.resource
    if settings is None or resource is None:
        state.registry = Registry() if settings is None else state.registry
        state.generation += 1
        return
    # The parent's exporters, span pipeline and collector are left untouched: they belong to it.
    state.settings, state.exports, state.tracer_provider = None, [], None
    state.span_exporters, state.collector = [], None
    state.registry = Registry()
    try:
        _start(settings, resource=_new_instance(resource))
    except Exception:
        internal_error("restart after fork")


os.register_at_fork(after_in_child=_after_fork_in_child)
