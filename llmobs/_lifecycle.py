"""What ``init`` builds and ``shutdown`` tears down: the registry instruments record into, the
tracer, and the export threads. Recording sites re-bind when ``generation`` changes."""

from __future__ import annotations

import atexit
import functools
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace

from . import _config, _env, _logs
from ._aggregation import NOOP, Registry, Series
from ._attributes import Attributes, AttributeValue
from ._failsafe import guarded, logger
from ._otlp import FinalAttempt
from ._version import __version__
from .semconv import PROCESS_PID, SERVICE_INSTANCE_ID, SERVICE_NAME, Instrument

if TYPE_CHECKING:
    # The SDK's resources module imports psutil: loaded at init, not when llmobs is imported.
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from ._collector import Collector
    from ._logs import Pipeline
    from ._periodic import PeriodicExport
    from ._prometheus.endpoint import Endpoint


class _Disabled:
    """The registry of a disabled or shut-down llmobs: every series is a no-op."""

    max_series = 0

    def series(self, *_: Instrument | Attributes) -> Series:
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
        self.tracer_provider: TracerProvider | None = None
        self.resource: Resource | None = None
        self.span_exporters: list[SpanExporter] = []
        self.collector: Collector | None = None
        self.prometheus: Endpoint | None = None
        self.lock = threading.RLock()
        self.atexit_registered = False
        self.flushing: set[object] = set()  # pipelines with a force_flush in flight
        self.after_fork_hooked = False
        self.exit_hook_pid = 0  # the process whose multiprocessing exit flushes llmobs
        self.logs: Pipeline | None = None


state = State()


def init(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: _config.Protocol | None = None,
    headers: Mapping[str, str] | None = None,
    export_interval: float | None = None,
    traces: bool | None = None,
    summary: bool | None = None,
    max_series: int | None = None,
    shutdown_timeout: float | None = None,
    resource_attributes: Mapping[str, AttributeValue] | None = None,
    gpu: bool | None = None,
    host: bool | None = None,
    gpu_devices: Sequence[int] | None = None,
    collect_interval: float | None = None,
    capture_exception_messages: bool | None = None,
    export_max_bytes: int | None = None,
    fail_open: bool | None = None,
    prometheus: bool | str | None = None,
    http_clients: bool | None = None,
    probe_targets: Sequence[str] | None = None,
    probe_interval: float | None = None,
    probe_timeout: float | None = None,
    history: bool | str | None = None,
    capture_evaluation_explanations: bool | None = None,
    ecs_log: str | None = None,
    capture_logging: bool | None = None,
    inventory: bool | None = None,
    principal_key: str | None = None,
    buckets: Mapping[str, Sequence[float] | str] | None = None,
) -> None:
    """Configure llmobs from arguments, then ``OTEL_*``/``LLMOBS_*`` variables; start exporting.

    Safe to call twice (the second call changes nothing). Raises ``ConfigError`` on bad settings,
    unless ``fail_open`` (or LLMOBS_FAIL_OPEN=true): then it logs one error and llmobs stays off.
    """
    try:
        settings = _config.load(
            service_name,
            endpoint=endpoint,
            protocol=protocol,
            headers=headers,
            export_interval=export_interval,
            traces=traces,
            summary=summary,
            max_series=max_series,
            shutdown_timeout=shutdown_timeout,
            resource_attributes=resource_attributes,
            gpu=gpu,
            host=host,
            gpu_devices=gpu_devices,
            collect_interval=collect_interval,
            capture_exception_messages=capture_exception_messages,
            export_max_bytes=export_max_bytes,
            fail_open=fail_open,
            prometheus=prometheus,
            http_clients=http_clients,
            probe_targets=probe_targets,
            probe_interval=probe_interval,
            probe_timeout=probe_timeout,
            history=history,
            capture_evaluation_explanations=capture_evaluation_explanations,
            ecs_log=ecs_log,
            capture_logging=capture_logging,
            inventory=inventory,
            principal_key=principal_key,
            buckets=buckets,
        )
    except _config.ConfigError as error:
        if not _config.wants_fail_open(fail_open, os.environ):
            raise
        settings = _switched_off(error)
    with state.lock:
        if state.settings is not None:
            if settings != state.settings:
                logger.warning(
                    "llmobs: init() was already called; the new settings are ignored "
                    "(call llmobs.shutdown() first to change them)"
                )
            return
        try:
            start(settings)
        except _config.ConfigError as error:
            if not settings.fail_open:
                raise
            start(_switched_off(error))
        if not state.atexit_registered:
            state.atexit_registered = True
            atexit.register(shutdown)
    if settings.http_clients and not settings.disabled:
        _instrument_http_clients()


@guarded(where="instrumenting HTTP clients")
def _instrument_http_clients() -> None:
    from ._clients import instrument_http_clients

    instrument_http_clients()


def _switched_off(error: _config.ConfigError) -> _config.Settings:
    """Fail-open: the settings of an llmobs that stays off. Config errors never quote a secret."""
    logger.error("llmobs: invalid configuration, llmobs is off (fail-open): %s", error)
    return _config.Settings(disabled=True, fail_open=True)


def start(
    settings: _config.Settings,
    metric_exporters: Sequence[MetricExporter] = (),
    span_exporters: Sequence[SpanExporter] = (),
    *,
    fresh: bool = False,
) -> None:
    """Start everything ``settings`` asks for, plus the exporters given here (``llmobs.testing``
    passes in-memory ones), or nothing: a failure rolls back and raises ``ConfigError``.

    ``fresh`` drops what was recorded before; otherwise calls made before ``init`` are exported.
    Raises ``RuntimeError`` when llmobs is already running.
    """
    with state.lock:
        if state.settings is not None:
            raise RuntimeError("llmobs is already initialized: call llmobs.shutdown() first")
        if fresh:
            state.registry = Registry()
        try:
            _build(settings, metric_exporters, span_exporters)
        except _config.ConfigError:
            shutdown(timeout=0)
            raise
        except Exception as exc:
            shutdown(timeout=0)  # nothing half-started stays behind; a corrected init() starts afresh
            raise _config.ConfigError(
                f"llmobs could not start its exporters ({type(exc).__name__}: {exc}); "
                "check the OTEL_EXPORTER_OTLP_* variables"
            ) from exc
        _flush_at_multiprocessing_exit()
        if settings.inventory and state.logs is not None:
            from ._inventory import emit_inventory

            # Reading every distribution's metadata takes ~0.1 s: not on init's time.
            threading.Thread(target=emit_inventory, name="llmobs-inventory", daemon=True).start()


def _build(
    settings: _config.Settings,
    metric_exporters: Sequence[MetricExporter],
    span_exporters: Sequence[SpanExporter],
    resource: Resource | None = None,
) -> None:
    state.settings = settings
    if settings.disabled:
        state.registry, state.tracer = DISABLED, None
    else:
        state.resource = resource = resource or _resource(settings)
        state.registry = _registry(settings, resource, metric_exporters)
        state.tracer = _tracer(settings, resource, span_exporters)
        state.logs = _logs.start(settings, resource)
        service = resource.attributes.get(SERVICE_NAME)
        service = service if isinstance(service, str) else None
        if settings.prometheus is not None:
            state.prometheus = _prometheus(settings, settings.prometheus, resource, state.registry, service)
        if settings.gpu or settings.host or settings.probe_targets:
            from ._collector import Collector

            state.collector = Collector(settings, state.registry, service)
        from ._profiling import start as start_profiling

        start_profiling(settings)
    state.generation += 1


def _prometheus(
    settings: _config.Settings, address: tuple[str, int], resource: Resource, registry: Recording, service: str | None
) -> Endpoint | None:
    """The scrape endpoint; a port this process should serve but cannot bind fails init with the fix."""
    from ._prometheus.endpoint import Endpoint, EndpointError

    if not isinstance(registry, Registry):
        return None
    try:
        return Endpoint(registry, resource, address, settings.collect_interval, service)
    except EndpointError as exc:
        raise _config.ConfigError(
            f"llmobs {exc}; set {_env.OTEL_EXPORTER_PROMETHEUS_PORT} (or init(prometheus='host:port')) to a free "
            "port, or stop the process holding it"
        ) from None


def _resource(settings: _config.Settings) -> Resource:
    attributes: dict[str, AttributeValue] = dict(settings.resource_attributes)
    if settings.service_name:
        attributes[SERVICE_NAME] = settings.service_name
    from opentelemetry.sdk.resources import Resource

    from ._resource import detect

    resource = Resource(dict(detect())).merge(Resource.create(attributes))  # what the user set wins
    own: dict[str, AttributeValue] = {PROCESS_PID: os.getpid()}
    if SERVICE_INSTANCE_ID not in resource.attributes:
        own[SERVICE_INSTANCE_ID] = str(uuid.uuid4())
    return resource.merge(Resource(own))


def _child_resource(resource: Resource) -> Resource:
    """The parent's resource for a forked child: its own instance id and process ids.

    Reused rather than detected again: detection runs on a thread pool whose lock other at-fork
    handlers may not have re-armed yet (preloaded gunicorn workers hung there).
    """
    from opentelemetry.sdk.resources import PROCESS_PARENT_PID, Resource

    own: dict[str, AttributeValue] = {SERVICE_INSTANCE_ID: str(uuid.uuid4()), PROCESS_PID: os.getpid()}
    if PROCESS_PARENT_PID in resource.attributes:
        own[PROCESS_PARENT_PID] = os.getppid()
    return resource.merge(Resource(own))


def _registry(settings: _config.Settings, resource: Resource, extra: Sequence[MetricExporter]) -> Registry:
    provider = metrics.get_meter_provider()
    if _installed(provider):
        return Registry(settings.max_series, meter=provider.get_meter("llmobs", __version__), buckets=settings.buckets)
    registry = state.registry if isinstance(state.registry, Registry) else Registry()
    registry.max_series = settings.max_series
    registry.buckets = settings.buckets
    if settings.metrics_otlp is not None:
        from ._otlp import metric_exporter

        target = settings.metrics_otlp
        delta = target.temporality != "cumulative"
        _export(registry, metric_exporter(target), resource, delta, settings, target.endpoint)
    if settings.summary:
        from ._summary import SummaryExporter

        _export(registry, SummaryExporter(), resource, True, settings)
    if settings.history is not None:
        from ._history import HistoryExporter

        history = HistoryExporter(settings.history, settings.history_retention, settings.history_max_bytes)
        _export(registry, history, resource, True, settings)
    for exporter in extra:
        _export(registry, exporter, resource, False, settings)
    return registry


def _export(
    registry: Registry,
    exporter: MetricExporter,
    resource: Resource,
    delta: bool,
    settings: _config.Settings,
    endpoint: str | None = None,
) -> None:
    """Start one periodic export; ``endpoint`` is the OTLP URL (None for in-process exporters)."""
    from ._periodic import PeriodicExport
    from ._points import Points

    points = Points(resource, delta, keep_range=endpoint is None)  # in-process readers clamp to min/max
    interval, timeout = settings.export_interval, settings.export_timeout
    export = PeriodicExport(
        registry, exporter, points, interval, timeout, max_bytes=settings.export_max_bytes, endpoint=endpoint
    )
    state.exports.append(export)


def _tracer(settings: _config.Settings, resource: Resource, extra: Sequence[SpanExporter]) -> trace.Tracer | None:
    if settings.traces is False:
        return None
    provider = trace.get_tracer_provider()
    if _installed(provider):
        return provider.get_tracer("llmobs", __version__)
    if settings.traces_otlp is None and not settings.traces_console and not extra:
        return None
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    from ._final_spans import ENCODES, EncodingSpanProcessor, OTLPSpans, export_batch

    own = TracerProvider(resource=resource, span_limits=SpanLimits(**settings.span_limits), shutdown_on_exit=False)
    if settings.traces_otlp is not None:
        state.span_exporters.append(OTLPSpans(settings.traces_otlp))
    if settings.traces_console:
        state.span_exporters.append(ConsoleSpanExporter())
    state.span_exporters.extend(extra)
    from ._self_telemetry import counted_spans, processor_meters

    registry = state.registry
    meters = processor_meters(registry) if isinstance(registry, Registry) else None
    for exporter in state.span_exporters:
        counted = counted_spans(registry, exporter) if isinstance(registry, Registry) else exporter
        batch = BatchSpanProcessor(counted, max_export_batch_size=export_batch(), meter_provider=meters)
        encoded = ENCODES and isinstance(exporter, OTLPSpans)  # other exporters read the SDK's spans
        own.add_span_processor(EncodingSpanProcessor(batch) if encoded else batch)
    state.tracer_provider = own
    return own.get_tracer("llmobs", __version__)


def _installed(provider: object) -> bool:
    """True when the application set a real global provider (e.g. via opentelemetry-instrument)."""
    placeholders = (trace.NoOpTracerProvider, trace.ProxyTracerProvider, metrics.NoOpMeterProvider)
    # The API has no public name for the meter proxy it returns before a provider is set.
    return not isinstance(provider, placeholders) and type(provider).__name__ != "_ProxyMeterProvider"


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop within ``timeout`` seconds (default 5, or LLMOBS_SHUTDOWN_TIMEOUT).

    Idempotent; recording afterwards is a silent no-op. Returns False when the time ran out first.
    """
    with state.lock:
        settings, exports, provider, collector = state.settings, state.exports, state.tracer_provider, state.collector
        span_exporters, state.span_exporters = state.span_exporters, []
        endpoint, logs, state.logs = state.prometheus, state.logs, None
        if settings is None:
            return True
        state.registry, state.tracer, state.exports, state.tracer_provider = DISABLED, None, [], None
        state.settings, state.collector, state.prometheus = None, None, None
        state.generation += 1
    from ._profiling import stop as stop_profiling

    stop_profiling()
    budget = settings.shutdown_timeout if timeout is None else timeout
    deadline = time.monotonic() + budget
    # In parallel, so that one stuck exporter cannot eat the others' share of the budget.
    tasks: list[Callable[[], object]] = [functools.partial(e.shutdown, deadline) for e in exports]
    if provider is not None:
        tasks.append(functools.partial(_stop_tracing, provider, span_exporters, deadline))
    if collector is not None:
        tasks.append(functools.partial(collector.stop, deadline))
    if endpoint is not None:
        tasks.append(functools.partial(endpoint.shutdown, deadline))
    if logs is not None:
        tasks.append(functools.partial(logs.shutdown, deadline))
    finished = _run_until(tasks, deadline)
    if not finished:
        logger.warning("llmobs: shutdown gave up after %.1fs; telemetry not yet exported is lost", budget)
    return finished


def force_flush(timeout: float = 5.0) -> bool:
    """Export everything recorded so far now (end of a batch job, before a fork, in tests).

    At most one flush per pipeline is in flight: while one is stuck on a dead backend, a second
    call starts no thread for it and returns False.
    """
    with state.lock:
        pipelines: list[tuple[object, Callable[[], object]]] = [(e, e.export_once) for e in state.exports]
        provider = state.tracer_provider
        if provider is not None:
            pipelines.append((provider, functools.partial(provider.force_flush, int(timeout * 1000))))
        if state.logs is not None:
            pipelines.append((state.logs, functools.partial(state.logs.force_flush, timeout)))
        free = [(pipeline, task) for pipeline, task in pipelines if pipeline not in state.flushing]
        state.flushing.update(pipeline for pipeline, _ in free)
    tasks: list[Callable[[], object]] = [functools.partial(_flush, pipeline, task) for pipeline, task in free]
    return _run_until(tasks, time.monotonic() + timeout) and len(free) == len(pipelines)


def _flush(pipeline: object, task: Callable[[], object]) -> object:
    try:
        return task()
    finally:
        with state.lock:
            state.flushing.discard(pipeline)


def _run_until(tasks: list[Callable[[], object]], deadline: float) -> bool:
    """Run ``tasks`` on threads until ``deadline``; True when all finished in time and none
    returned False."""
    results: list[bool] = []

    @guarded(where="flush or shutdown")
    def run(task: Callable[[], object]) -> None:
        results.append(task() is not False)

    workers = [threading.Thread(target=run, args=(task,), daemon=True) for task in tasks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    return len(results) == len(tasks) and all(results)


def _stop_tracing(provider: TracerProvider, exporters: list[SpanExporter], deadline: float) -> bool:
    """Flush and stop the span pipeline; past ``deadline``, stop its exporters' retries instead."""
    for exporter in exporters:
        if isinstance(exporter, FinalAttempt):
            exporter.closing()
    stopper = threading.Thread(target=provider.shutdown, daemon=True)
    stopper.start()
    stopper.join(max(0.0, deadline - time.monotonic()))
    if not stopper.is_alive():
        return True
    for exporter in exporters:
        # The SDK's BatchSpanProcessor joins its worker for 30 s; a stuck export there only ends when
        # the exporter is shut down under it.
        _shut(exporter)
    return False


@guarded(where="span exporter shutdown")
def _shut(exporter: SpanExporter) -> None:
    exporter.shutdown()


def _flush_at_multiprocessing_exit() -> None:
    """multiprocessing children end with ``os._exit``, skipping atexit: flush at their exit instead.

    A child started by fork clears its finalizers after the fork, so the finalizer is registered
    from multiprocessing's own after-fork hook; a child that calls init itself (spawn, forkserver,
    a pool initializer) registers it now.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    if not state.after_fork_hooked:  # inherited by forked children, as the hook itself is
        state.after_fork_hooked = True
        util.register_after_fork(state, _finalize_at_exit)
    import multiprocessing

    if multiprocessing.parent_process() is not None and state.exit_hook_pid != os.getpid():
        _finalize_at_exit(state)


def _finalize_at_exit(_: State) -> None:
    import multiprocessing.util

    state.exit_hook_pid = os.getpid()
    multiprocessing.util.Finalize(None, shutdown, exitpriority=0)


def _after_fork_in_child() -> None:
    """A pre-fork worker starts over before it serves anything: fresh locks, empty series, its own
    instance id and process ids, new exporter threads and channels."""
    state.lock = threading.RLock()
    state.flushing = set()
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
    state.span_exporters, state.collector, state.prometheus, state.logs = [], None, None, None
    state.registry = Registry()
    _restart(settings, resource)


@guarded(where="restart after fork")
def _restart(settings: _config.Settings, resource: Resource) -> None:
    _build(settings, (), (), _child_resource(resource))
    _flush_at_multiprocessing_exit()


os.register_at_fork(after_in_child=_after_fork_in_child)
