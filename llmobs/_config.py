"""Settings: built once at ``init`` from its arguments, then the standard ``OTEL_*`` and ``LLMOBS_*``
variables. Every invalid value fails here, with the variable and the fix in the message."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

PROTOCOLS = ("grpc", "http/protobuf")
SIGNALS = ("metrics", "traces")
EXPORTERS = ("otlp", "console", "none")
TEMPORALITIES = ("cumulative", "delta", "lowmemory")
OPTIONS = (
    "service_name",
    "endpoint",
    "protocol",
    "headers",
    "export_interval",
    "traces",
    "max_series",
    "shutdown_timeout",
    "resource_attributes",
    "gpu",
    "host",
    "gpu_devices",
    "collect_interval",
    "capture_exception_messages",
    "export_max_bytes",
    "summary",
)


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
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
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


def load(options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Validate ``options`` (the keyword arguments of ``init``) and read the environment."""
    env = os.environ if env is None else env
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"init() got unknown option(s) {', '.join(unknown)}; valid options are: {', '.join(OPTIONS)}")
    disabled = _flag(env, "OTEL_SDK_DISABLED")
    # Checked even when unused, so that a typo fails now rather than when it is first needed.
    _temporality(env)
    _protocol(options, {}, "")
    _headers(options, {}, "")
    _files(env)
    metrics_exporters = _exporters(env, "OTEL_METRICS_EXPORTER")
    traces_exporters = _exporters(env, "OTEL_TRACES_EXPORTER")
    traces = options.get("traces")
    if traces is not None and not isinstance(traces, bool):
        raise ConfigError("init(traces=...) must be True, False or None (decide from OTEL_TRACES_EXPORTER)")

    metrics_otlp = _target(options, env, "metrics", metrics_exporters)
    traces_otlp = None if traces is False else _target(options, env, "traces", traces_exporters)
    if traces is True and traces_otlp is None and "console" not in (traces_exporters or ()):
        traces_otlp = _target(options, env, "traces", ("otlp",))
    summary = options.get("summary")
    if summary is None:
        summary = "console" in metrics_exporters if metrics_exporters is not None else metrics_otlp is None
    elif not isinstance(summary, bool):
        raise ConfigError("init(summary=...) must be True, False or None (decide from OTEL_METRICS_EXPORTER)")

    default_interval = 60.0 if metrics_otlp else 10.0
    interval = _seconds(options, "export_interval", env, "OTEL_METRIC_EXPORT_INTERVAL", default_interval, least=0.05)
    return Settings(
        service_name=_service_name(options.get("service_name")),
        resource_attributes=_resource_attributes(options),
        metrics_otlp=metrics_otlp,
        traces_otlp=traces_otlp,
        summary=summary,
        traces=_traces(traces, traces_exporters),
        traces_console=traces is not False and "console" in (traces_exporters or ()),
        export_interval=interval,
        export_timeout=_seconds({}, "", env, "OTEL_METRIC_EXPORT_TIMEOUT", 30.0),
        max_series=_positive_int(options, "max_series", env, "LLMOBS_MAX_SERIES", 2000),
        shutdown_timeout=_seconds(options, "shutdown_timeout", env, "LLMOBS_SHUTDOWN_TIMEOUT", 5.0, most=600.0),
        disabled=disabled,
        gpu=_switch(options, "gpu", env, "LLMOBS_GPU"),
        host=_switch(options, "host", env, "LLMOBS_HOST"),
        gpu_devices=_devices(options, env),
        collect_interval=_seconds(
            options, "collect_interval", env, "LLMOBS_COLLECT_INTERVAL", 1.0, least=0.05, most=3600.0
        ),
        capture_exception_messages=_flag(env, "LLMOBS_CAPTURE_EXCEPTION_MESSAGES")
        if options.get("capture_exception_messages") is None
        else bool(options["capture_exception_messages"]),
        export_max_bytes=_positive_int(options, "export_max_bytes", env, "LLMOBS_EXPORT_MAX_BYTES", 4_000_000),
    )


def _switch(options: Mapping[str, Any], option: str, env: Mapping[str, str], name: str) -> bool:
    """An on/off option (default on), else its variable ('true'/'false')."""
    value = options.get(option)
    if value is not None:
        if not isinstance(value, bool):
            raise ConfigError(f"init({option}=...) must be True or False")
        return value
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "true", "false"):
        raise ConfigError(f"{name} must be 'true' or 'false', got {env[name]!r}")
    return raw != "false"


def _devices(options: Mapping[str, Any], env: Mapping[str, str]) -> tuple[int, ...] | None:
    """GPU indices to read (None: all), from ``gpu_devices=[0, 1]`` or LLMOBS_GPU_DEVICES=0,1."""
    value = options.get("gpu_devices")
    source = "init(gpu_devices=...)"
    if value is None and env.get("LLMOBS_GPU_DEVICES", "").strip():
        source = "LLMOBS_GPU_DEVICES"
        try:
            value = [int(part) for part in env["LLMOBS_GPU_DEVICES"].split(",") if part.strip()]
        except ValueError:
            raise ConfigError("LLMOBS_GPU_DEVICES must be comma-separated GPU indices, e.g. 0,1") from None
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value
    ):
        raise ConfigError(f"{source} must list GPU indices (integers >= 0), e.g. [0, 1]")
    return tuple(value)


def _traces(option: bool | None, exporters: tuple[str, ...] | None) -> bool | None:
    """True/False when decided; None means "only if the application installed a TracerProvider"."""
    if option is not None:
        return option
    if exporters is None:
        return None
    return exporters != ("none",)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value not in ("", "true", "false"):
        raise ConfigError(f"{name} must be 'true' or 'false'")
    return value == "true"


def _exporters(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    names = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    bad = [n for n in names if n not in EXPORTERS]
    if bad:
        raise ConfigError(
            f"{name} has unsupported exporter(s) {', '.join(bad)}; llmobs supports "
            f"{', '.join(EXPORTERS)} ('console' prints llmobs's summary)"
        )
    return names


def _target(
    options: Mapping[str, Any], env: Mapping[str, str], signal: str, exporters: tuple[str, ...] | None
) -> OTLPTarget | None:
    upper = signal.upper()
    endpoint = _endpoint_option(options, env, upper)
    wanted = "otlp" in exporters if exporters is not None else endpoint is not None
    if not wanted:
        return None
    protocol = _protocol(options, env, upper)
    if endpoint is None:
        base = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
        endpoint = (base, True)
    url, is_base = endpoint
    if protocol == "http/protobuf" and is_base:
        url = url.rstrip("/") + f"/v1/{signal}"
    return OTLPTarget(
        protocol=protocol,
        endpoint=url,
        headers=_headers(options, env, upper),
        timeout=_timeout(env, upper),
        temporality=_temporality(env) if signal == "metrics" else "cumulative",
    )


def _endpoint_option(options: Mapping[str, Any], env: Mapping[str, str], upper: str) -> tuple[str, bool] | None:
    """The endpoint and whether it is a base URL (the HTTP exporter then appends ``/v1/<signal>``)."""
    if options.get("endpoint") is not None:
        return _url(options["endpoint"], "init(endpoint=...)"), True
    specific = env.get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT", "").strip()
    if specific:
        return _url(specific, f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT"), False
    generic = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if generic:
        return _url(generic, "OTEL_EXPORTER_OTLP_ENDPOINT"), True
    return None


def _url(value: object, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{source} must be a URL string such as http://localhost:4317")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{source}={value!r} is not a URL; use the form http://host:port (https:// for TLS)")
    try:
        _ = parsed.port  # raises on a port out of range
    except ValueError:
        raise ConfigError(f"{source}={value!r} has an invalid port") from None
    return value


def _protocol(options: Mapping[str, Any], env: Mapping[str, str], upper: str) -> str:
    candidates = [
        ("init(protocol=...)", options.get("protocol")),
        (f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL", env.get(f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", env.get("OTEL_EXPORTER_OTLP_PROTOCOL")),
    ]
    for source, value in candidates:
        if value:
            if value not in PROTOCOLS:
                raise ConfigError(f"{source}={value!r} is not supported; use 'grpc' or 'http/protobuf'")
            return str(value)
    return "grpc"


def _headers(options: Mapping[str, Any], env: Mapping[str, str], upper: str) -> dict[str, str]:
    """The variables' headers (``key=value,...``, values URL-encoded; the per-signal variable over
    the generic one), with ``init(headers=...)`` added over them. Errors never quote a value."""
    headers: dict[str, str] = {}
    for name in (f"OTEL_EXPORTER_OTLP_{upper}_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        raw = env.get(name, "")
        if raw.strip():
            headers = _parse_headers(raw, name)
            break
    option = options.get("headers")
    if option is not None:
        if not isinstance(option, Mapping) or not all(
            isinstance(k, str) and _HEADER_KEY.fullmatch(k) and isinstance(v, str) for k, v in option.items()
        ):
            raise ConfigError("init(headers=...) must be a dict of header names to str values")
        headers.update({k.lower(): v for k, v in option.items()})
    return headers


# As the OpenTelemetry SDK's own parser reads them: the exporters must never meet an entry that
# their parser would log (it logs the entry verbatim, secret included).
_HEADER_KEY = re.compile(r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+")
_HEADER_ENTRY = re.compile(
    r"[ \t]*[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*=[ \t]*"
    r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*[ \t]*"
)


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
        headers[key.strip().lower()] = unquote(value.strip())
    return headers


def _files(env: Mapping[str, str]) -> None:
    """TLS files are read by the exporters when they connect; a wrong path fails here instead."""
    for signal in ("", "METRICS_", "TRACES_"):
        for kind in ("CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"):
            name = f"OTEL_EXPORTER_OTLP_{signal}{kind}"
            path = env.get(name, "").strip()
            if path and not os.path.isfile(path):
                raise ConfigError(f"{name}={path!r} is not a readable file; give the path of a PEM file")


def _timeout(env: Mapping[str, str], upper: str) -> float:
    for name in (f"OTEL_EXPORTER_OTLP_{upper}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        if env.get(name, "").strip():
            seconds = _seconds({}, "", env, name, 10.0)
            if seconds < 0.1:
                raise ConfigError(
                    f"{name} is in milliseconds (OpenTelemetry specification): "
                    f"{env[name]} ms is too short to export anything; use e.g. 10000 for 10 s"
                )
            return seconds
    return 10.0


def _temporality(env: Mapping[str, str]) -> str:
    name = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
    value = env.get(name, "").strip().lower() or "cumulative"
    if value not in TEMPORALITIES:
        raise ConfigError(f"{name} must be one of {', '.join(TEMPORALITIES)}")
    return value


def _seconds(
    options: Mapping[str, Any],
    option: str,
    env: Mapping[str, str],
    name: str,
    default: float,
    least: float = 0.001,
    most: float = 86_400.0,
) -> float:
    """An option in seconds, else a variable in milliseconds (as OpenTelemetry's are), else default;
    either within [least, most] seconds."""
    if options.get(option) is not None:
        value = options[option]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not least <= value <= most:
            raise ConfigError(f"init({option}=...) must be a number of seconds from {least:g} to {most:g}")
        return float(value)
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        millis = float(raw)
    except ValueError:
        millis = float("nan")
    if not least <= millis / 1000 <= most:
        raise ConfigError(
            f"{name} must be a number of milliseconds from {least * 1000:g} to {most * 1000:g}, got {raw!r}"
        )
    return millis / 1000


def _positive_int(options: Mapping[str, Any], option: str, env: Mapping[str, str], name: str, default: int) -> int:
    value: object = options.get(option)
    source = f"init({option}=...)"
    if value is None and env.get(name, "").strip():
        value, source = env[name].strip(), name
        try:
            value = int(str(value))
        except ValueError:
            raise ConfigError(f"{name} must be a positive integer, got {env[name]!r}") from None
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{source} must be a positive integer")
    return value


def _service_name(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError("service_name must be a non-empty string (or set OTEL_SERVICE_NAME)")
    return value


def _resource_attributes(options: Mapping[str, Any]) -> dict[str, str]:
    """OTEL_RESOURCE_ATTRIBUTES is read by the SDK's Resource; here only the option is checked."""
    value = options.get("resource_attributes")
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError("resource_attributes must be a dict with string keys")
    return dict(value)
