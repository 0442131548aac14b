"""The environment variables llmobs reads: one constant each, cited by its messages and by
docs/configuration.md. ``OTEL_*`` ones keep the meaning the OpenTelemetry specification gives them."""

from __future__ import annotations

from typing import Final, NamedTuple

OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
"""``true`` turns llmobs into no-ops."""

OTEL_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
"""``service.name`` when ``init`` gets none (read by the SDK's ``Resource``)."""

OTEL_RESOURCE_ATTRIBUTES: Final = "OTEL_RESOURCE_ATTRIBUTES"
"""Extra resource attributes, ``key=value,...`` (read by the SDK's ``Resource``)."""

OTEL_METRICS_EXPORTER: Final = "OTEL_METRICS_EXPORTER"
"""Comma-separated: ``otlp``, ``console`` (llmobs's summary), ``prometheus`` (a scrape endpoint) or ``none``."""

OTEL_EXPORTER_PROMETHEUS_HOST: Final = "OTEL_EXPORTER_PROMETHEUS_HOST"
"""The address the Prometheus scrape endpoint binds (default ``localhost``; ``0.0.0.0`` exposes it)."""

OTEL_EXPORTER_PROMETHEUS_PORT: Final = "OTEL_EXPORTER_PROMETHEUS_PORT"
"""The port of the Prometheus scrape endpoint (default 9464)."""

OTEL_TRACES_EXPORTER: Final = "OTEL_TRACES_EXPORTER"
"""Comma-separated: ``otlp``, ``console`` or ``none`` (no span objects at all)."""

OTEL_METRIC_EXPORT_INTERVAL: Final = "OTEL_METRIC_EXPORT_INTERVAL"
"""Milliseconds between metric exports."""

OTEL_METRIC_EXPORT_TIMEOUT: Final = "OTEL_METRIC_EXPORT_TIMEOUT"
"""Upper bound of one metric export, in milliseconds."""

OTEL_EXPORTER_OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""Base URL of the OTLP receiver (``/v1/<signal>`` is appended for ``http/protobuf``)."""

OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
"""Full URL for metrics, used as given."""

OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
"""Full URL for spans, used as given."""

OTEL_EXPORTER_OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
"""``grpc`` or ``http/protobuf``."""

OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
"""The protocol for metrics, over the generic one."""

OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
"""The protocol for spans, over the generic one."""

OTEL_EXPORTER_OTLP_HEADERS: Final = "OTEL_EXPORTER_OTLP_HEADERS"
"""``key=value,...`` with URL-encoded values; may hold secrets, so never shown."""

OTEL_EXPORTER_OTLP_METRICS_HEADERS: Final = "OTEL_EXPORTER_OTLP_METRICS_HEADERS"
"""Headers for metrics, instead of the generic ones."""

OTEL_EXPORTER_OTLP_TRACES_HEADERS: Final = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
"""Headers for spans, instead of the generic ones."""

OTEL_EXPORTER_OTLP_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_TIMEOUT"
"""Milliseconds one OTLP request may take."""

OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"
"""The request timeout for metrics, over the generic one."""

OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
"""The request timeout for spans, over the generic one."""

OTEL_EXPORTER_OTLP_INSECURE: Final = "OTEL_EXPORTER_OTLP_INSECURE"
"""``true``/``false``: gRPC without TLS (read by the exporters)."""

OTEL_EXPORTER_OTLP_METRICS_INSECURE: Final = "OTEL_EXPORTER_OTLP_METRICS_INSECURE"
"""``true``/``false`` for metrics."""

OTEL_EXPORTER_OTLP_TRACES_INSECURE: Final = "OTEL_EXPORTER_OTLP_TRACES_INSECURE"
"""``true``/``false`` for spans."""

OTEL_EXPORTER_OTLP_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_CERTIFICATE"
"""PEM file of the CA that signed the receiver's certificate (read by the exporters)."""

OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"
"""The CA file for metrics."""

OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
"""The CA file for spans."""

OTEL_EXPORTER_OTLP_CLIENT_KEY: Final = "OTEL_EXPORTER_OTLP_CLIENT_KEY"
"""PEM file of the client's private key for mutual TLS."""

OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: Final = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY"
"""The client key for metrics."""

OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: Final = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"
"""The client key for spans."""

OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
"""PEM file of the client's certificate for mutual TLS."""

OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE"
"""The client certificate for metrics."""

OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"
"""The client certificate for spans."""

OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: Final = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
"""``cumulative``, ``delta`` or ``lowmemory``."""

OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION: Final = (
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"
)
"""Only ``explicit_bucket_histogram``: llmobs's buckets follow the semantic conventions."""

OTEL_PROPAGATORS: Final = "OTEL_PROPAGATORS"
"""Comma-separated propagator names, each installed (``opentelemetry_propagator`` entry points) or ``none``."""

OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: Final = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"
"""Longest attribute value on spans and their events (exception messages too); default 4096 here."""

OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: Final = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"
"""Longest span attribute value, over the generic limit."""

OTEL_ATTRIBUTE_COUNT_LIMIT: Final = "OTEL_ATTRIBUTE_COUNT_LIMIT"
"""Most attributes on a span, event or link (default 128)."""

OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: Final = "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"
"""Most attributes on a span, over the generic limit."""

OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: Final = "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"
"""Most attributes on a span event, over the generic limit."""

OTEL_LINK_ATTRIBUTE_COUNT_LIMIT: Final = "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"
"""Most attributes on a span link, over the generic limit."""

OTEL_SPAN_EVENT_COUNT_LIMIT: Final = "OTEL_SPAN_EVENT_COUNT_LIMIT"
"""Most events on a span (default 128)."""

OTEL_SPAN_LINK_COUNT_LIMIT: Final = "OTEL_SPAN_LINK_COUNT_LIMIT"
"""Most links on a span (default 128)."""

LLMOBS_MAX_SERIES: Final = "LLMOBS_MAX_SERIES"
"""Distinct attribute sets per metric (1 to 1,000,000); further ones share an overflow series."""

LLMOBS_SHUTDOWN_TIMEOUT: Final = "LLMOBS_SHUTDOWN_TIMEOUT"
"""Milliseconds ``shutdown()`` and the flush at exit may take."""

LLMOBS_GPU: Final = "LLMOBS_GPU"
"""``true``/``false``: the background GPU collector."""

LLMOBS_HOST: Final = "LLMOBS_HOST"
"""``true``/``false``: the background host collector."""

LLMOBS_GPU_DEVICES: Final = "LLMOBS_GPU_DEVICES"
"""Comma-separated GPU indices to read, e.g. ``0,1``."""

LLMOBS_COLLECT_INTERVAL: Final = "LLMOBS_COLLECT_INTERVAL"
"""Milliseconds between collector samples."""

LLMOBS_CAPTURE_EXCEPTION_MESSAGES: Final = "LLMOBS_CAPTURE_EXCEPTION_MESSAGES"
"""``true`` exports exception messages and stack traces on spans (off: they may quote a prompt)."""

LLMOBS_EXPORT_MAX_BYTES: Final = "LLMOBS_EXPORT_MAX_BYTES"
"""Byte budget of one metric export request; larger exports are split."""

LLMOBS_FAIL_OPEN: Final = "LLMOBS_FAIL_OPEN"
"""``true``: invalid configuration logs one error and turns llmobs off instead of raising."""

LLMOBS_HTTP_CLIENTS: Final = "LLMOBS_HTTP_CLIENTS"
"""``true``: ``init`` instruments the installed HTTP clients (httpx, requests, aiohttp)."""

LLMOBS_PROBE_TARGETS: Final = "LLMOBS_PROBE_TARGETS"
"""Comma-separated dependency probe targets: ``host:port`` or ``http(s)://`` URLs."""

LLMOBS_PROBE_INTERVAL: Final = "LLMOBS_PROBE_INTERVAL"
"""Milliseconds between probes of each target."""

LLMOBS_PROBE_TIMEOUT: Final = "LLMOBS_PROBE_TIMEOUT"
"""Milliseconds each probe phase (DNS, connect, HTTP) may take."""

# Model quality and the local history (docs/quality.md, docs/history.md)

LLMOBS_HISTORY: Final = "LLMOBS_HISTORY"
"""``off``, ``on`` (the default file in the user's data directory) or the SQLite file's path; on by
default with the embedded summary."""

LLMOBS_HISTORY_RETENTION: Final = "LLMOBS_HISTORY_RETENTION"
"""How long the history keeps intervals: ``7d``, ``24h``, ``90m``."""

LLMOBS_HISTORY_MAX_MB: Final = "LLMOBS_HISTORY_MAX_MB"
"""Size cap of the history file in MiB; the oldest intervals go first."""

LLMOBS_CAPTURE_EVALUATION_EXPLANATIONS: Final = "LLMOBS_CAPTURE_EVALUATION_EXPLANATIONS"
"""``true`` exports evaluation explanations (off: they may quote a prompt or a completion)."""

# Logs and security events (docs/logs.md, docs/security.md)

OTEL_LOGS_EXPORTER: Final = "OTEL_LOGS_EXPORTER"
"""Comma-separated: ``otlp``, ``console`` (OpenTelemetry JSON on stdout) or ``none``."""

OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
"""Full URL for log records, used as given."""

OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
"""The protocol for log records, over the generic one."""

OTEL_EXPORTER_OTLP_LOGS_HEADERS: Final = "OTEL_EXPORTER_OTLP_LOGS_HEADERS"
"""Headers for log records, instead of the generic ones."""

OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: Final = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"
"""The request timeout for log records, over the generic one."""

OTEL_EXPORTER_OTLP_LOGS_INSECURE: Final = "OTEL_EXPORTER_OTLP_LOGS_INSECURE"
"""``true``/``false`` for log records."""

OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE"
"""The CA file for log records."""

OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY: Final = "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY"
"""The client key for log records."""

OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE: Final = "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE"
"""The client certificate for log records."""

LLMOBS_ECS_LOG: Final = "LLMOBS_ECS_LOG"
"""``stderr`` or a file path: llmobs's log records as ECS JSON lines (the file is created 0600)."""

LLMOBS_LOGGING: Final = "LLMOBS_LOGGING"
"""``true``: the root logger's records go through llmobs's log pipeline, with trace ids."""

LLMOBS_INVENTORY: Final = "LLMOBS_INVENTORY"
"""``false``: no inventory record of the installed distributions at start."""

LLMOBS_PRINCIPAL_KEY: Final = "LLMOBS_PRINCIPAL_KEY"
"""The secret (16+ characters) that keys the HMAC of a middleware's ``principal``; never shown."""


# Profiling (docs/profiling.md)

LLMOBS_PROFILING: Final = "LLMOBS_PROFILING"
"""``off``: no ``llmobs profile PID`` trigger and no automatic profiling (default ``on``)."""

LLMOBS_PROFILING_DIR: Final = "LLMOBS_PROFILING_DIR"
"""Absolute path of the directory profiles go to (created 0700; default ``profiles`` in the runtime directory)."""

LLMOBS_PROFILING_MAX_MB: Final = "LLMOBS_PROFILING_MAX_MB"
"""Megabytes of profiles kept in that directory; the oldest go first (default 100)."""

LLMOBS_PROFILING_AUTO_THRESHOLD: Final = "LLMOBS_PROFILING_AUTO_THRESHOLD"
"""Milliseconds: a call of a model this slow profiles that model's next calls (unset: no automatic profiling)."""

LLMOBS_PROFILING_AUTO_CALLS: Final = "LLMOBS_PROFILING_AUTO_CALLS"
"""How many calls an automatic capture profiles (default 5)."""

LLMOBS_PROFILING_AUTO_COOLDOWN: Final = "LLMOBS_PROFILING_AUTO_COOLDOWN"
"""Milliseconds before the same model can trigger an automatic capture again (default 600000)."""


LLMOBS_BUCKETS: Final = "LLMOBS_BUCKETS"
"""Histogram boundaries, ``name=b1,b2,...`` or ``name=embedding``, separated by ``;`` (docs/engines.md)."""


class OTLPVariables(NamedTuple):
    """The variables of one OTLP signal (or the generic ones)."""

    endpoint: str
    protocol: str
    headers: str
    timeout: str
    insecure: str
    certificate: str
    client_key: str
    client_certificate: str


GENERIC = OTLPVariables(
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_EXPORTER_OTLP_INSECURE,
    OTEL_EXPORTER_OTLP_CERTIFICATE,
    OTEL_EXPORTER_OTLP_CLIENT_KEY,
    OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
)
METRICS = OTLPVariables(
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_METRICS_HEADERS,
    OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
    OTEL_EXPORTER_OTLP_METRICS_INSECURE,
    OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE,
    OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY,
    OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE,
)
TRACES = OTLPVariables(
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_HEADERS,
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
    OTEL_EXPORTER_OTLP_TRACES_INSECURE,
    OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE,
    OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY,
    OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE,
)
LOGS = OTLPVariables(
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_LOGS_HEADERS,
    OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
    OTEL_EXPORTER_OTLP_LOGS_INSECURE,
    OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE,
    OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY,
    OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE,
)
