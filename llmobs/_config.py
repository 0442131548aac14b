"""Settings: built once at ``init`` from its arguments, then the standard ``OTEL_*`` and ``LLMOBS_*``
variables (named in ``_env``). Every variable that is set is checked, whether or not it is used, so
that a value that breaks in the cluster also breaks on a laptop; each message names the fix."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

from . import _buckets, _env
from ._attributes import AttributeValue
from ._env import GENERIC, LOGS, METRICS, TRACES, OTLPVariables
from ._targets import Target, parse_targets

Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS = ("grpc", "http/protobuf")
EXPORTERS = ("otlp", "console", "none")
METRIC_EXPORTERS = ("otlp", "console", "prometheus", "none")
PROMETHEUS_PORT = 9464
TEMPORALITIES = ("cumulative", "delta", "lowmemory")
MAX_SERIES = 1_000_000
DEFAULT_VALUE_LENGTH = 4096  # one 5 MB exception message must not lose the whole span batch
T = TypeVar("T")


class ConfigError(ValueError):
    """An option or environment variable that llmobs cannot use; the message says how to fix it."""


@dataclass(frozen=True)
class OTLPTarget:
    """Where one signal goes over OTLP. ``headers`` may hold secrets: never shown in a repr."""

    protocol: str
    endpoint: str
    headers: Mapping[str, str] = field(repr=False)
    timeout: float
    temporality: str = "cumulative"


@dataclass(frozen=True)
class Settings:
    """Everything ``init`` decided. ``None`` for a target means that signal is not sent over OTLP."""

    service_name: str | None = None
    resource_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    metrics_otlp: OTLPTarget | None = None
    traces_otlp: OTLPTarget | None = None
    summary: bool = True
    traces: bool | None = None
    traces_console: bool = False
    export_interval: float = 10.0
    export_timeout: float = 30.0
    max_series: int = 2000
    shutdown_timeout: float = 5.0
    disabled: bool = False
    gpu: bool = True
    host: bool = True
    gpu_devices: tuple[int, ...] | None = None
    collect_interval: float = 1.0
    capture_exception_messages: bool = False
    export_max_bytes: int = 4_000_000
    span_limits: Mapping[str, int] = field(default_factory=dict)  # keyword arguments of the SDK's SpanLimits
    fail_open: bool = False
    prometheus: tuple[str, int] | None = None
    """(host, port) of the scrape endpoint, when there is one."""
    http_clients: bool = False
    probe_targets: tuple[Target, ...] = ()
    probe_interval: float = 10.0
    probe_timeout: float = 2.0
    history: str | None = None
    """The SQLite history file (None: off)."""
    history_retention: float = 7 * 86_400.0
    history_max_bytes: int = 100 * 2**20
    capture_evaluation_explanations: bool = False
    logs_otlp: OTLPTarget | None = None
    logs_console: bool = False
    ecs_log: str | None = None
    """``stderr`` or the path of the ECS JSON lines file."""
    capture_logging: bool = False
    inventory: bool = True
    principal_key: bytes | None = field(default=None, repr=False)
    profiling: bool = True
    profiling_dir: str | None = None
    profiling_max_bytes: int = 100 * 2**20
    profiling_auto: float | None = None
    """Seconds: a call this slow starts an automatic capture (None: off)."""
    profiling_auto_calls: int = 5
    profiling_auto_cooldown: float = 600.0
    buckets: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """Histogram boundaries by metric name, where the user chose them (``_buckets``)."""


def load(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: Protocol | None = None,
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
    env: Mapping[str, str] | None = None,
) -> Settings:
    """The settings ``init`` asks for: each option from its argument, then its variable, then its
    default. Raises ``ConfigError`` naming the option or variable and the fix."""
    env = os.environ if env is None else env
    _check_read_by_others(env)
    traces = _bool_arg(traces, "traces", f" (None decides from {_env.OTEL_TRACES_EXPORTER})")
    metrics_exporters = _exporters(env, _env.OTEL_METRICS_EXPORTER, METRIC_EXPORTERS)
    traces_exporters = _exporters(env, _env.OTEL_TRACES_EXPORTER, EXPORTERS)
    metrics_otlp = _sent(_target(env, METRICS, "metrics", endpoint, protocol, headers), metrics_exporters)
    spans = _target(env, TRACES, "traces", endpoint, protocol, headers)
    traces_otlp, traces_console = _span_target(spans, traces_exporters, traces)
    logs_exporters = _exporters(env, _env.OTEL_LOGS_EXPORTER, EXPORTERS)
    logs_otlp = _sent(_target(env, LOGS, "logs", endpoint, protocol, headers), logs_exporters)
    default_summary = "console" in metrics_exporters if metrics_exporters is not None else metrics_otlp is None
    return Settings(
        service_name=_service_name(service_name),
        resource_attributes=_resource_attributes(resource_attributes),
        metrics_otlp=metrics_otlp,
        traces_otlp=traces_otlp,
        summary=_first(
            _bool_arg(summary, "summary", f" (None decides from {_env.OTEL_METRICS_EXPORTER})"), default_summary
        ),
        traces=_traces(traces, traces_exporters),
        traces_console=traces_console,
        export_interval=_first(
            _seconds_arg(export_interval, "export_interval", 0.05),
            _millis_var(env, _env.OTEL_METRIC_EXPORT_INTERVAL, 0.05),
            60.0 if metrics_otlp else 10.0,
        ),
        export_timeout=_first(_millis_var(env, _env.OTEL_METRIC_EXPORT_TIMEOUT), 30.0),
        max_series=_first(
            _int_arg(max_series, "max_series", MAX_SERIES), _int_var(env, _env.LLMOBS_MAX_SERIES, 1, MAX_SERIES), 2000
        ),
        shutdown_timeout=_first(
            _seconds_arg(shutdown_timeout, "shutdown_timeout", most=600.0),
            _millis_var(env, _env.LLMOBS_SHUTDOWN_TIMEOUT, most=600.0),
            5.0,
        ),
        disabled=_first(_bool_var(env, _env.OTEL_SDK_DISABLED), False),
        gpu=_first(_bool_arg(gpu, "gpu"), _bool_var(env, _env.LLMOBS_GPU), True),
        host=_first(_bool_arg(host, "host"), _bool_var(env, _env.LLMOBS_HOST), True),
        gpu_devices=_gpu_devices(gpu_devices, env),
        collect_interval=_first(
            _seconds_arg(collect_interval, "collect_interval", 0.05, 3600.0),
            _millis_var(env, _env.LLMOBS_COLLECT_INTERVAL, 0.05, 3600.0),
            1.0,
        ),
        capture_exception_messages=_first(
            _bool_arg(capture_exception_messages, "capture_exception_messages"),
            _bool_var(env, _env.LLMOBS_CAPTURE_EXCEPTION_MESSAGES),
            False,
        ),
        export_max_bytes=_first(
            _int_arg(export_max_bytes, "export_max_bytes"),
            _int_var(env, _env.LLMOBS_EXPORT_MAX_BYTES, 1, 2**62),
            4_000_000,
        ),
        span_limits=_span_limits(env),
        fail_open=wants_fail_open(fail_open, env),
        prometheus=_prometheus(prometheus, env, metrics_exporters),
        http_clients=_first(_bool_arg(http_clients, "http_clients"), _bool_var(env, _env.LLMOBS_HTTP_CLIENTS), False),
        probe_targets=_probe_targets(probe_targets, env),
        probe_interval=_first(
            _seconds_arg(probe_interval, "probe_interval", 0.05, 3600.0),
            _millis_var(env, _env.LLMOBS_PROBE_INTERVAL, 0.05, 3600.0),
            10.0,
        ),
        probe_timeout=_first(
            _seconds_arg(probe_timeout, "probe_timeout", 0.01, 60.0),
            _millis_var(env, _env.LLMOBS_PROBE_TIMEOUT, 0.01, 60.0),
            2.0,
        ),
        history=_history(history, env, default_summary if summary is None else bool(summary), service_name),
        history_retention=_first(_duration_var(env, _env.LLMOBS_HISTORY_RETENTION), 7 * 86_400.0),
        history_max_bytes=_first(_int_var(env, _env.LLMOBS_HISTORY_MAX_MB, 1, 1_000_000), 100) * 2**20,
        capture_evaluation_explanations=_first(
            _bool_arg(capture_evaluation_explanations, "capture_evaluation_explanations"),
            _bool_var(env, _env.LLMOBS_CAPTURE_EVALUATION_EXPLANATIONS),
            False,
        ),
        logs_otlp=logs_otlp,
        logs_console="console" in (logs_exporters or ()),
        ecs_log=_ecs_log(ecs_log, env),
        capture_logging=_first(
            _bool_arg(capture_logging, "capture_logging"), _bool_var(env, _env.LLMOBS_LOGGING), False
        ),
        inventory=_first(_bool_arg(inventory, "inventory"), _bool_var(env, _env.LLMOBS_INVENTORY), True),
        principal_key=_principal_key(principal_key, env),
        profiling=_profiling_switch(env),
        profiling_dir=_profiling_dir(env),
        profiling_max_bytes=_first(_int_var(env, _env.LLMOBS_PROFILING_MAX_MB, 1, 1_000_000), 100) * 2**20,
        profiling_auto=_millis_var(env, _env.LLMOBS_PROFILING_AUTO_THRESHOLD, 0.001, 3600.0),
        profiling_auto_calls=_first(_int_var(env, _env.LLMOBS_PROFILING_AUTO_CALLS, 1, 1000), 5),
        profiling_auto_cooldown=_first(_millis_var(env, _env.LLMOBS_PROFILING_AUTO_COOLDOWN, 0.0, 86_400.0), 600.0),
        buckets=_buckets_of(buckets, env),
    )


def wants_fail_open(value: bool | None, env: Mapping[str, str]) -> bool:
    """``init(fail_open=...)``, else LLMOBS_FAIL_OPEN: whether invalid configuration turns llmobs off
    (with one error logged) instead of raising."""
    return _first(_bool_arg(value, "fail_open"), _bool_var(env, _env.LLMOBS_FAIL_OPEN), False)


def _first(*values: T | None) -> T:
    """The first value that is not None: the argument, then the variable, then the default."""
    return next(value for value in values if value is not None)


# Resolvers: each reads one source and returns None when it is not set.


def _bool_arg(value: object, option: str, hint: str = "") -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"init({option}=...) must be True or False{hint}")
    return value


def _bool_var(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ConfigError(f"{name} must be 'true' or 'false', got {env[name]!r}")
    return None if not raw else raw == "true"


def _seconds_arg(value: object, option: str, least: float = 0.001, most: float = 86_400.0) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not least <= value <= most:
        raise ConfigError(f"init({option}=...) must be a number of seconds from {least:g} to {most:g}")
    return float(value)


def _millis_var(env: Mapping[str, str], name: str, least: float = 0.001, most: float = 86_400.0) -> float | None:
    """A variable in milliseconds, as OpenTelemetry's are, returned in seconds."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw) / 1000
    except ValueError:
        seconds = math.nan
    if not least <= seconds <= most:
        raise ConfigError(
            f"{name} must be a number of milliseconds from {least * 1000:g} to {most * 1000:g}, got {raw!r}"
        )
    return seconds


def _int_arg(value: object, option: str, most: int = 2**62) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most):
        raise ConfigError(f"init({option}=...) must be an integer from 1 to {most}")
    return value


def _int_var(env: Mapping[str, str], name: str, least: int, most: int) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not least <= int(raw) <= most:
        raise ConfigError(f"{name} must be an integer from {least} to {most}, got {raw!r}")
    return int(raw)


def _gpu_devices(value: object, env: Mapping[str, str]) -> tuple[int, ...] | None:
    """GPU indices to read (None: all), from the argument, else LLMOBS_GPU_DEVICES=0,1."""
    variable = _devices_var(env)
    if value is None:
        return variable
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value
    ):
        raise ConfigError("init(gpu_devices=...) must list GPU indices (integers >= 0), e.g. [0, 1]")
    return tuple(value)


def _devices_var(env: Mapping[str, str]) -> tuple[int, ...] | None:
    raw = env.get(_env.LLMOBS_GPU_DEVICES, "")
    if not raw.strip():
        return None
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not all(part.isdigit() for part in parts):
        raise ConfigError(f"{_env.LLMOBS_GPU_DEVICES} must be comma-separated GPU indices, e.g. 0,1")
    return tuple(int(part) for part in parts)


def _service_name(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"service_name must be a non-empty string (or set {_env.OTEL_SERVICE_NAME})")
    return value


def _resource_attributes(value: object) -> dict[str, AttributeValue]:
    """OTEL_RESOURCE_ATTRIBUTES is read by the SDK's Resource; here only the argument is checked."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError("init(resource_attributes=...) must be a dict with string keys")
    return dict(value)


def _traces(option: bool | None, exporters: tuple[str, ...] | None) -> bool | None:
    """True/False when decided; None means "only if the application installed a TracerProvider"."""
    if option is not None:
        return option
    if exporters is None:
        return None
    return exporters != ("none",)


def _exporters(env: Mapping[str, str], name: str, supported: tuple[str, ...]) -> tuple[str, ...] | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    names = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    bad = [n for n in names if n not in supported]
    if bad:
        raise ConfigError(
            f"{name} has unsupported exporter(s) {', '.join(bad)}; llmobs supports "
            f"{', '.join(supported)} ('console' prints llmobs's summary)"
        )
    return names


def _buckets_of(option: Mapping[str, Sequence[float] | str] | None, env: Mapping[str, str]) -> _buckets.Buckets:
    try:
        return _buckets.load(option, env)
    except ValueError as problem:
        raise ConfigError(str(problem)) from None


def _probe_targets(option: object, env: Mapping[str, str]) -> tuple[Target, ...]:
    """``init(probe_targets=[...])``, else LLMOBS_PROBE_TARGETS; the variable is checked either way."""
    try:
        variable = parse_targets(env.get(_env.LLMOBS_PROBE_TARGETS, ""))
    except ValueError as exc:
        raise ConfigError(f"{_env.LLMOBS_PROBE_TARGETS}: {exc}") from None
    if option is None:
        return variable
    if isinstance(option, str) or not isinstance(option, Sequence) or not all(isinstance(t, str) for t in option):
        raise ConfigError("init(probe_targets=...) must be a list of strings, e.g. ['db:5432', 'http://svc/health']")
    try:
        return parse_targets(",".join(option))
    except ValueError as exc:
        raise ConfigError(f"init(probe_targets=...): {exc}") from None


def _ecs_log(option: object, env: Mapping[str, str]) -> str | None:
    """``stderr`` or an absolute file path for ECS JSON lines, from the argument, else LLMOBS_ECS_LOG."""
    raw = env.get(_env.LLMOBS_ECS_LOG, "").strip()
    for source, value in (("init(ecs_log=...)", option), (_env.LLMOBS_ECS_LOG, raw or None)):
        if value is not None and (not isinstance(value, str) or not (value == "stderr" or os.path.isabs(value))):
            raise ConfigError(f"{source} must be 'stderr' or an absolute file path, e.g. /var/log/app/llmobs.json")
    return option if isinstance(option, str) else raw or None


MIN_KEY_LENGTH = 16


def _principal_key(option: object, env: Mapping[str, str]) -> bytes | None:
    """The HMAC key for principals, from the argument, else LLMOBS_PRINCIPAL_KEY. Errors never quote it."""
    raw = env.get(_env.LLMOBS_PRINCIPAL_KEY, "")
    for source, value in (("init(principal_key=...)", option), (_env.LLMOBS_PRINCIPAL_KEY, raw or None)):
        if value is not None and (not isinstance(value, str) or len(value.strip()) < MIN_KEY_LENGTH):
            raise ConfigError(
                f"{source} must be a secret of at least {MIN_KEY_LENGTH} characters (the value is not shown), "
                "e.g. from `openssl rand -hex 32`"
            )
    chosen = option if isinstance(option, str) else raw or None
    return chosen.strip().encode() if chosen else None


def _profiling_switch(env: Mapping[str, str]) -> bool:
    """LLMOBS_PROFILING: ``on`` (the default) or ``off``; ``true``/``false`` are taken too."""
    raw = env.get(_env.LLMOBS_PROFILING, "").strip().lower()
    if raw not in ("", "on", "off", "true", "false"):
        raise ConfigError(f"{_env.LLMOBS_PROFILING} must be 'on' or 'off', got {env[_env.LLMOBS_PROFILING]!r}")
    return raw not in ("off", "false")


def _profiling_dir(env: Mapping[str, str]) -> str | None:
    raw = env.get(_env.LLMOBS_PROFILING_DIR, "").strip()
    if raw and not os.path.isabs(raw):
        raise ConfigError(f"{_env.LLMOBS_PROFILING_DIR} must be an absolute directory path, got {raw!r}")
    return raw or None


def _prometheus(
    option: bool | str | None, env: Mapping[str, str], exporters: tuple[str, ...] | None
) -> tuple[str, int] | None:
    """The scrape endpoint's (host, port): ``init(prometheus="host:port")`` or True, else ``prometheus``
    among OTEL_METRICS_EXPORTER, at the variables' address. The variables are checked either way."""
    host = _prometheus_host(env.get(_env.OTEL_EXPORTER_PROMETHEUS_HOST, "").strip() or "localhost",
                            _env.OTEL_EXPORTER_PROMETHEUS_HOST)  # fmt: skip
    port = _first(_int_var(env, _env.OTEL_EXPORTER_PROMETHEUS_PORT, 1, 65535), PROMETHEUS_PORT)
    if isinstance(option, str) and not isinstance(option, bool):
        given, _, number = option.rpartition(":")
        if not number.isdigit() or not 1 <= int(number) <= 65535:
            raise ConfigError(f"init(prometheus={option!r}) must be True, False or 'host:port' with a port 1-65535")
        return _prometheus_host(given.strip("[]") or "localhost", "init(prometheus=...)"), int(number)
    wanted = _bool_arg(option, "prometheus", " or 'host:port'")
    if wanted is None:
        wanted = exporters is not None and "prometheus" in exporters
    return (host, port) if wanted else None


def _prometheus_host(host: str, source: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.:_-]+", host):
        raise ConfigError(f"{source} must be a host name or address such as localhost, 0.0.0.0 or ::1")
    return host


# OTLP targets: both signals' variables are read and checked always, whether sent or not.


def _sent(target: tuple[OTLPTarget, bool], exporters: tuple[str, ...] | None) -> OTLPTarget | None:
    """The target when its signal goes over OTLP: ``otlp`` among the exporters, or else an endpoint set."""
    wanted = "otlp" in exporters if exporters is not None else target[1]
    return target[0] if wanted else None


def _span_target(
    target: tuple[OTLPTarget, bool], exporters: tuple[str, ...] | None, traces: bool | None
) -> tuple[OTLPTarget | None, bool]:
    """Where spans go over OTLP (None: not), and whether they go to the console too."""
    console = traces is not False and "console" in (exporters or ())
    if traces is False:
        return None, console
    sent = _sent(target, exporters)
    if traces is True and sent is None and not console:
        sent = target[0]
    return sent, console


def _target(
    env: Mapping[str, str],
    variables: OTLPVariables,
    signal: str,
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | None,
) -> tuple[OTLPTarget, bool]:
    """Where ``signal`` would go, and whether an endpoint was configured for it."""
    chosen = _protocol(protocol, env, variables)
    configured = _endpoint(endpoint, env, variables)
    default = ("http://localhost:4317" if chosen == "grpc" else "http://localhost:4318", True)
    url, is_base = configured or default
    if chosen == "http/protobuf" and is_base:
        url = url.rstrip("/") + f"/v1/{signal}"
    target = OTLPTarget(
        protocol=chosen,
        endpoint=url,
        headers=_headers(headers, env, variables),
        timeout=_first(_timeout_var(env, variables.timeout), _timeout_var(env, GENERIC.timeout), 10.0),
        temporality=_temporality(env) if signal == "metrics" else "cumulative",
    )
    return target, configured is not None


def _endpoint(value: str | None, env: Mapping[str, str], variables: OTLPVariables) -> tuple[str, bool] | None:
    """The endpoint and whether it is a base URL (the HTTP exporter then appends ``/v1/<signal>``)."""
    specific, generic = env.get(variables.endpoint, "").strip(), env.get(GENERIC.endpoint, "").strip()
    found = [
        (_url(value, "init(endpoint=...)"), True) if value is not None else None,
        (_url(specific, variables.endpoint), False) if specific else None,
        (_url(generic, GENERIC.endpoint), True) if generic else None,
    ]
    return next((choice for choice in found if choice is not None), None)


_HOST_NAME = re.compile(r"[A-Za-z0-9._~-]+")


def _url(value: object, source: str) -> str:
    """``value`` if it is an http(s) URL with a usable host and port; messages never show a password."""
    if not isinstance(value, str):
        raise ConfigError(f"{source} must be a URL string such as http://localhost:4317")
    shown = re.sub(r"//[^/@]*@", "//***@", value)
    try:
        parsed = urlsplit(value)
        host, port = parsed.hostname, parsed.port
    except ValueError:
        raise ConfigError(f"{source}={shown!r} has an invalid host or port; use the form http://host:port") from None
    if parsed.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{source}={shown!r} is not a URL; use the form http://host:port (https:// for TLS)")
    if not (_HOST_NAME.fullmatch(host) or ("[" in parsed.netloc and _is_ip(host))):
        raise ConfigError(f"{source}={shown!r} has an invalid host name (spaces or other characters not allowed)")
    if port == 0:
        raise ConfigError(f"{source}={shown!r} has port 0; give the receiver's port, e.g. 4317 (gRPC) or 4318")
    return value


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _protocol(value: str | None, env: Mapping[str, str], variables: OTLPVariables) -> str:
    candidates = [
        ("init(protocol=...)", value),
        (variables.protocol, env.get(variables.protocol, "").strip() or None),
        (GENERIC.protocol, env.get(GENERIC.protocol, "").strip() or None),
    ]
    for source, candidate in candidates:
        if candidate is not None and candidate not in PROTOCOLS:
            raise ConfigError(f"{source}={candidate!r} is not supported; use 'grpc' or 'http/protobuf'")
    return _first(*(candidate for _, candidate in candidates), "grpc")


def _headers(option: Mapping[str, str] | None, env: Mapping[str, str], variables: OTLPVariables) -> dict[str, str]:
    """The variables' headers (the per-signal variable over the generic one), with the argument's
    added over them. Errors never quote a value."""
    specific, generic = (_parse_headers(env.get(name, ""), name) for name in (variables.headers, GENERIC.headers))
    headers = dict(specific if env.get(variables.headers, "").strip() else generic)
    if option is not None:
        if not isinstance(option, Mapping) or not all(
            isinstance(k, str) and _HEADER_KEY.fullmatch(k) and isinstance(v, str) for k, v in option.items()
        ):
            raise ConfigError("init(headers=...) must be a dict of header names to str values")
        for key, value in option.items():
            if not _HEADER_VALUE.fullmatch(value):
                raise ConfigError(f"init(headers=...) value of {key!r} {_BAD_VALUE}")
        headers.update({k.lower(): v for k, v in option.items()})
    return headers


# As the OpenTelemetry SDK's own parser reads them: the exporters must never meet an entry that
# their parser would log (it logs the entry verbatim, secret included).
_HEADER_KEY = re.compile(r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+")
_HEADER_ENTRY = re.compile(
    r"[ \t]*[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*=[ \t]*"
    r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*[ \t]*"
)
# A value as it is sent, after URL-decoding: HTTP clients and gRPC refuse (and the HTTP exporter
# then logs) control characters and surrounding spaces, so they fail here instead.
_HEADER_VALUE = re.compile(r"([\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?)?")
_BAD_VALUE = "has control characters, non-ASCII characters or leading/trailing spaces (the value is not shown)"


def _parse_headers(raw: str, name: str) -> dict[str, str]:
    headers = {}
    for position, entry in enumerate(re.split(r"[ \t]*,[ \t]*", raw), start=1):
        if not entry.strip():
            continue
        if not _HEADER_ENTRY.fullmatch(entry.strip()):
            raise ConfigError(
                f"{name} is malformed at entry {position}: expected comma-separated "
                "key=value pairs with URL-encoded values (the values are not shown)"
            )
        key, _, value = entry.partition("=")
        decoded = unquote(value.strip())
        if not _HEADER_VALUE.fullmatch(decoded):
            raise ConfigError(f"{name} entry {position}: the URL-decoded value {_BAD_VALUE}")
        headers[key.strip().lower()] = decoded
    return headers


def _timeout_var(env: Mapping[str, str], name: str) -> float | None:
    seconds = _millis_var(env, name)
    if seconds is not None and seconds < 0.1:
        raise ConfigError(
            f"{name} is in milliseconds (OpenTelemetry specification): "
            f"{env[name].strip()} ms is too short to export anything; use e.g. 10000 for 10 s"
        )
    return seconds


def _temporality(env: Mapping[str, str]) -> str:
    name = _env.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE
    value = env.get(name, "").strip().lower() or "cumulative"
    if value not in TEMPORALITIES:
        raise ConfigError(f"{name} must be one of {', '.join(TEMPORALITIES)}")
    return value


# Variables that the exporters, the SDK or the propagation API read themselves.


def _check_read_by_others(env: Mapping[str, str]) -> None:
    _temporality(env)
    for variables in (GENERIC, METRICS, TRACES, LOGS):
        _bool_var(env, variables.insecure)
        for name in (variables.certificate, variables.client_key, variables.client_certificate):
            _pem_file(env, name)
    _propagators(env)
    aggregation = env.get(_env.OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION, "").strip().lower()
    if aggregation not in ("", "explicit_bucket_histogram"):
        raise ConfigError(
            f"{_env.OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION}: exponential histograms are not "
            "supported (llmobs's buckets follow the semantic conventions); unset it or use explicit_bucket_histogram"
        )


def _pem_file(env: Mapping[str, str], name: str) -> None:
    """TLS files are read by the exporters when they connect; a wrong one fails here instead."""
    path = env.get(name, "").strip()
    if not path:
        return
    try:
        with open(path, "rb") as file:
            head = file.read(1 << 20)
    except OSError:
        raise ConfigError(f"{name}={path!r} is not a readable file; give the path of a PEM file") from None
    if b"-----BEGIN " not in head:
        raise ConfigError(f"{name}={path!r} is not a PEM file (no '-----BEGIN' line); convert it, e.g. with openssl")


def _propagators(env: Mapping[str, str]) -> None:
    raw = env.get(_env.OTEL_PROPAGATORS, "").strip()
    if not raw:
        return
    from importlib.metadata import entry_points

    installed = {entry.name for entry in entry_points(group="opentelemetry_propagator")} | {"none"}
    unknown = [name for name in (part.strip() for part in raw.split(",")) if name and name not in installed]
    if unknown:
        raise ConfigError(
            f"{_env.OTEL_PROPAGATORS} names propagator(s) that are not installed: {', '.join(unknown)}; "
            f"installed: {', '.join(sorted(installed))}"
        )


# SDK SpanLimits argument, its variable, and the default: a number, or an argument resolved before it.
_SPAN_LIMITS: tuple[tuple[str, str, int | str], ...] = (
    ("max_attributes", _env.OTEL_ATTRIBUTE_COUNT_LIMIT, 128),
    ("max_span_attributes", _env.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, "max_attributes"),
    ("max_event_attributes", _env.OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, "max_attributes"),
    ("max_link_attributes", _env.OTEL_LINK_ATTRIBUTE_COUNT_LIMIT, "max_attributes"),
    ("max_events", _env.OTEL_SPAN_EVENT_COUNT_LIMIT, 128),
    ("max_links", _env.OTEL_SPAN_LINK_COUNT_LIMIT, 128),
    ("max_attribute_length", _env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, DEFAULT_VALUE_LENGTH),
    ("max_span_attribute_length", _env.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, "max_attribute_length"),
)


def _span_limits(env: Mapping[str, str]) -> dict[str, int]:
    """Span limits from the OpenTelemetry variables, always finite (the SDK's value length is unlimited
    by default)."""
    limits: dict[str, int] = {}
    for argument, name, default in _SPAN_LIMITS:
        fallback = limits[default] if isinstance(default, str) else default
        limits[argument] = _first(_int_var(env, name, 0, 2**31 - 1), fallback)
    return limits


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 7 * 86_400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``30m``, ``24h``, ``7d`` or ``2w``; ValueError saying the form otherwise."""
    number, unit = text.strip()[:-1], text.strip()[-1:]
    try:
        seconds = float(number) * _DURATION_UNITS[unit]
    except (KeyError, ValueError):
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 24h, 7d or 2w") from None
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{text!r} must be a positive duration")
    return seconds


def _duration_var(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw is None:
        return None
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _history(option: object, env: Mapping[str, str], summary: bool, service: object) -> str | None:
    """The history file: ``init(history=...)``, else LLMOBS_HISTORY, else the default file when the
    embedded summary is on (the user's data directory, one file per service)."""
    value = _bool_arg(option, "history") if isinstance(option, bool) or option is None else option
    source = "init(history=...)"
    if value is None and _env.LLMOBS_HISTORY in env:
        value, source = env[_env.LLMOBS_HISTORY].strip(), _env.LLMOBS_HISTORY
        value = {"off": False, "false": False, "on": True, "true": True}.get(value.lower(), value)
    if value is None:
        value = summary
    if value is False:
        return None
    if value is True:
        return default_history_path(env, service if isinstance(service, str) else env.get("OTEL_SERVICE_NAME"))
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(f"{source} must be off, on, or the path of the SQLite history file")
    path = os.path.abspath(os.path.expanduser(value))
    if os.path.isdir(path):
        raise ConfigError(f"{source}={value!r} is a directory: name a file in it, e.g. {path}/history.db")
    return path


def default_history_path(env: Mapping[str, str], service: str | None) -> str:
    """``$XDG_DATA_HOME/llmobs/<service>.db``, else ``~/.local/share/llmobs/<service>.db``."""
    data = env.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data):
        data = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "llmobs", f"{re.sub(r'[^A-Za-z0-9_.-]', '_', service or 'default')[:64]}.db")
