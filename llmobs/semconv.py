"""Every name llmobs emits, in one place: metrics (instrument kind, unit, buckets), attribute keys,
the end reasons of calls and requests cut short, and the ``error.type`` of an exception.

Names follow the OpenTelemetry semantic conventions where they exist (GenAI, HTTP, hardware) and
live under ``llmobs.`` where they do not, so they never collide with a future convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from opentelemetry.semconv._incubating.attributes.otel_attributes import OTEL_COMPONENT_TYPE, OtelComponentTypeValues
from opentelemetry.semconv._incubating.metrics.otel_metrics import (
    OTEL_SDK_EXPORTER_LOG_EXPORTED,
    OTEL_SDK_EXPORTER_METRIC_DATA_POINT_EXPORTED,
    OTEL_SDK_EXPORTER_OPERATION_DURATION,
    OTEL_SDK_EXPORTER_SPAN_EXPORTED,
    OTEL_SDK_PROCESSOR_LOG_PROCESSED,
    OTEL_SDK_PROCESSOR_LOG_QUEUE_CAPACITY,
    OTEL_SDK_PROCESSOR_LOG_QUEUE_SIZE,
    OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
    OTEL_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY,
    OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE,
)


class Kind(Enum):
    """How a metric aggregates; maps onto the OpenTelemetry data point types."""

    HISTOGRAM = "histogram"
    COUNTER = "counter"
    IN_FLIGHT = "in_flight"
    """An up-down counter of things in flight, moved by +1 and -1 only."""
    GAUGE = "gauge"


@dataclass(frozen=True)
class Instrument:
    """A metric's identity. Hashable, so series are keyed by it."""

    name: str
    kind: Kind
    unit: str
    description: str
    buckets: tuple[float, ...] = ()


def _doubling(first: float, count: int) -> tuple[float, ...]:
    return tuple(round(first * 2**i, 6) for i in range(count))


# GenAI semantic conventions advise these boundaries.
DURATION_BUCKETS = _doubling(0.01, 14)  # 0.01 … 81.92 s
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1 … 67,108,864
THROUGHPUT_BUCKETS = (1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1000.0, 2500.0, 5000.0)
BATCH_DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)

REQUEST_DURATION = Instrument(
    "gen_ai.server.request.duration",
    Kind.HISTOGRAM,
    "s",
    "Time from the start of an inference call to its end.",
    DURATION_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Instrument(
    "gen_ai.server.time_to_first_token",
    Kind.HISTOGRAM,
    "s",
    "Time from the start of a streaming call to its first output chunk.",
    TTFT_BUCKETS,
)
TIME_PER_OUTPUT_TOKEN = Instrument(
    "gen_ai.server.time_per_output_token",
    Kind.HISTOGRAM,
    "s",
    "Time per output token after the first: (duration - TTFT) / (output tokens - 1).",
    TPOT_BUCKETS,
)
TOKEN_USAGE = Instrument(
    "llmobs.inference.token.usage",
    Kind.HISTOGRAM,
    "{token}",
    "Tokens per call, by gen_ai.token.type; the rate of its sum is tokens per second.",
    TOKEN_BUCKETS,
)
OUTPUT_THROUGHPUT = Instrument(
    "llmobs.inference.output_throughput",
    Kind.HISTOGRAM,
    "{token}/s",
    "Output tokens per second of one call.",
    THROUGHPUT_BUCKETS,
)
ACTIVE_REQUESTS = Instrument(
    "llmobs.inference.active_requests",
    Kind.IN_FLIGHT,
    "{request}",
    "Inference calls in flight.",
)

BATCH_DURATION = Instrument(
    "llmobs.batch.duration",
    Kind.HISTOGRAM,
    "s",
    "Wall time of one batch job run.",
    BATCH_DURATION_BUCKETS,
)
BATCH_ITEMS = Instrument(
    "llmobs.batch.items",
    Kind.COUNTER,
    "{item}",
    "Items a batch job processed, by llmobs.batch.outcome.",
)
BATCH_TOKENS = Instrument("llmobs.batch.tokens", Kind.COUNTER, "{token}", "Tokens a batch job processed.")
BATCH_PROGRESS = Instrument(
    "llmobs.batch.progress",
    Kind.GAUGE,
    "1",
    "Fraction of a batch job's known total that is done.",
)
BATCH_ACTIVE = Instrument("llmobs.batch.active", Kind.IN_FLIGHT, "{batch}", "Batch jobs running now.")

MODEL = "gen_ai.request.model"
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
END_REASON = "llmobs.end_reason"
BATCH_NAME = "llmobs.batch.name"
BATCH_OUTCOME = "llmobs.batch.outcome"
OVERFLOW = "otel.metric.overflow"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
BATCH_DONE = "llmobs.batch.items"
BATCH_FAILED = "llmobs.batch.failed"
SERVICE_NAME = "service.name"
SERVICE_INSTANCE_ID = "service.instance.id"
PROCESS_PID = "process.pid"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

CLIENT_CLOSED = "client_closed"
"""``llmobs.end_reason`` of a stream or request the client left before its end."""
CANCELLED = "cancelled"
"""``llmobs.end_reason`` of a call or request whose task was cancelled."""


def error_type(exc: BaseException) -> str:
    """``error.type``: the exception's fully qualified class name (builtins stay short)."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# HTTP server (stable semantic conventions); body-size buckets are powers of 4, 16 B … 256 MiB.
HTTP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
BODY_SIZE_BUCKETS = tuple(float(4**i) for i in range(2, 15))

HTTP_SERVER_DURATION = Instrument(
    "http.server.request.duration",
    Kind.HISTOGRAM,
    "s",
    "Time from a request's arrival to its response's last byte (or the client leaving).",
    HTTP_DURATION_BUCKETS,
)
HTTP_SERVER_TIME_TO_FIRST_BYTE = Instrument(
    "llmobs.http.server.time_to_first_byte",
    Kind.HISTOGRAM,
    "s",
    "Time from a request's arrival to its response's first body byte.",
    HTTP_DURATION_BUCKETS,
)
HTTP_SERVER_ACTIVE_REQUESTS = Instrument(
    "http.server.active_requests",
    Kind.IN_FLIGHT,
    "{request}",
    "HTTP requests in flight.",
)
HTTP_SERVER_REQUEST_BODY_SIZE = Instrument(
    "http.server.request.body.size",
    Kind.HISTOGRAM,
    "By",
    "Request body size, from Content-Length when the client sent one.",
    BODY_SIZE_BUCKETS,
)
HTTP_SERVER_RESPONSE_BODY_SIZE = Instrument(
    "http.server.response.body.size",
    Kind.HISTOGRAM,
    "By",
    "Response body bytes sent.",
    BODY_SIZE_BUCKETS,
)

HTTP_METHOD = "http.request.method"
HTTP_METHOD_ORIGINAL = "http.request.method_original"
HTTP_ROUTE = "http.route"
HTTP_STATUS_CODE = "http.response.status_code"
URL_SCHEME = "url.scheme"
URL_PATH = "url.path"

# Resource collector (llmobs/collector): GPU through NVML, host and process through psutil.
# Readings that conventions model as UpDownCounters (memory usage/limit, hw.status) are gauges
# here: a gauge can be withdrawn when its reading fails or goes stale, a running sum cannot.
GPU_UTILIZATION = Instrument(
    "hw.gpu.utilization",
    Kind.GAUGE,
    "1",
    "Fraction of time the GPU, or its encoder/decoder (hw.gpu.task), was busy.",
)
GPU_MEMORY_USAGE = Instrument("hw.gpu.memory.usage", Kind.GAUGE, "By", "GPU memory in use.")
GPU_MEMORY_LIMIT = Instrument("hw.gpu.memory.limit", Kind.GAUGE, "By", "GPU memory in total.")
GPU_MEMORY_UTILIZATION = Instrument("hw.gpu.memory.utilization", Kind.GAUGE, "1", "Fraction of GPU memory in use.")
GPU_IO = Instrument("hw.gpu.io", Kind.COUNTER, "By", "Bytes over PCIe, by network.io.direction.")
GPU_POWER = Instrument("hw.power", Kind.GAUGE, "W", "Power the GPU draws.")
GPU_ENERGY = Instrument("hw.energy", Kind.COUNTER, "J", "Energy the GPU consumed.")
GPU_TEMPERATURE = Instrument("hw.temperature", Kind.GAUGE, "Cel", "GPU core temperature.")
GPU_ERRORS = Instrument("hw.errors", Kind.COUNTER, "{error}", "GPU memory ECC errors, by error.type.")
GPU_STATUS = Instrument("hw.status", Kind.GAUGE, "1", "1 for the GPU's current hw.state, 0 for the others.")
GPU_MEMORY_BANDWIDTH = Instrument(
    "llmobs.gpu.memory.bandwidth.utilization",
    Kind.GAUGE,
    "1",
    "Fraction of time GPU memory was being read or written.",
)
GPU_CLOCK = Instrument("llmobs.gpu.clock.frequency", Kind.GAUGE, "Hz", "GPU clock, by llmobs.gpu.clock.type.")
GPU_THROTTLE = Instrument(
    "llmobs.gpu.throttle",
    Kind.GAUGE,
    "1",
    "1 while llmobs.gpu.throttle.reason holds the GPU's clocks down, else 0.",
)
GPU_PCIE_THROUGHPUT = Instrument(
    "llmobs.gpu.pcie.throughput",
    Kind.GAUGE,
    "By/s",
    "PCIe throughput NVML sampled, by network.io.direction.",
)
GPU_PROCESS_MEMORY = Instrument(
    "llmobs.gpu.process.memory.usage",
    Kind.GAUGE,
    "By",
    "GPU memory this process uses (matched by PID).",
)
COLLECTOR_ERRORS = Instrument(
    "llmobs.collector.errors",
    Kind.COUNTER,
    "{error}",
    "Readings the collector could not take, by error.type.",
)

SYSTEM_CPU_UTILIZATION = Instrument(
    "system.cpu.utilization",
    Kind.GAUGE,
    "1",
    "Fraction of the CPUs (the container's quota, if any) in use.",
)
SYSTEM_MEMORY_USAGE = Instrument("system.memory.usage", Kind.GAUGE, "By", "Memory in use (the container's, if any).")
SYSTEM_MEMORY_LIMIT = Instrument("system.memory.limit", Kind.GAUGE, "By", "Memory in total (the container's limit).")
SYSTEM_MEMORY_UTILIZATION = Instrument(
    "system.memory.utilization",
    Kind.GAUGE,
    "1",
    "Fraction of the memory (or the container's limit) in use.",
)
SYSTEM_DISK_IO = Instrument("system.disk.io", Kind.COUNTER, "By", "Disk bytes, by disk.io.direction.")
SYSTEM_NETWORK_IO = Instrument(
    "system.network.io",
    Kind.COUNTER,
    "By",
    "Network bytes, by network.interface.name and network.io.direction.",
)
PROCESS_CPU_UTILIZATION = Instrument(
    "process.cpu.utilization",
    Kind.GAUGE,
    "1",
    "Fraction of the CPUs available to this process that it used.",
)
PROCESS_MEMORY_USAGE = Instrument("process.memory.usage", Kind.GAUGE, "By", "This process's resident memory.")


def _window_max(base: Instrument) -> Instrument:
    name = base.name if base.name.startswith("llmobs.") else f"llmobs.{base.name}"
    return Instrument(
        f"{name}.max",
        Kind.GAUGE,
        base.unit,
        f"Maximum of {base.name} over the last export interval, so that a spike is not lost.",
    )


WINDOW_MAX = {
    base: _window_max(base)
    for base in (
        GPU_UTILIZATION,
        GPU_MEMORY_UTILIZATION,
        GPU_MEMORY_BANDWIDTH,
        SYSTEM_CPU_UTILIZATION,
        SYSTEM_MEMORY_UTILIZATION,
        PROCESS_CPU_UTILIZATION,
    )
}
"""Each utilization gauge and its companion carrying the window's maximum."""

HW_ID = "hw.id"
HW_NAME = "hw.name"
HW_TYPE = "hw.type"
HW_VENDOR = "hw.vendor"
HW_MODEL = "hw.model"
HW_STATE = "hw.state"
GPU_TASK = "hw.gpu.task"
CLOCK_TYPE = "llmobs.gpu.clock.type"
THROTTLE_REASON = "llmobs.gpu.throttle.reason"
IO_DIRECTION = "network.io.direction"
DISK_DIRECTION = "disk.io.direction"
INTERFACE = "network.interface.name"
MEMORY_STATE = "system.memory.state"

# Network (llmobs/_clients.py, llmobs/_collector/probe.py): outgoing HTTP calls (stable HTTP client
# conventions) and the dependency probe, which the conventions do not cover.
HTTP_CLIENT_DURATION = Instrument(
    "http.client.request.duration",
    Kind.HISTOGRAM,
    "s",
    "Time from sending an outgoing HTTP request to receiving its response headers (or its failure).",
    HTTP_DURATION_BUCKETS,
)
PROBE_DURATION = Instrument(
    "llmobs.network.probe.duration",
    Kind.HISTOGRAM,
    "s",
    "Time one probe phase took (llmobs.probe.phase = dns, connect, http); error.type when it failed.",
    (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PROBE_UP = Instrument(
    "llmobs.network.probe.up",
    Kind.GAUGE,
    "1",
    "1 when the last probe of a target succeeded, else 0.",
)
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
PROBE_TARGET = "llmobs.probe.target"
PROBE_PHASE = "llmobs.probe.phase"

# Engines (llmobs/_engine.py and the call handle): what vLLM, TGI and Triton report, for custom servers.
# The GenAI conventions define none of these yet, so they live under llmobs.: the queue/execution split
# follows vLLM's request_queue_time and request_inference_time (TGI: request_queue_duration and
# request_inference_duration), batch size and KV-cache use follow vLLM's and TGI's server metrics, as
# the open proposal open-telemetry/semantic-conventions-genai#87 (server-side inference metrics) does.
QUEUE_BUCKETS = _doubling(0.001, 17)  # 1 ms … 65.536 s
BATCH_SIZE_BUCKETS = tuple(float(2**i) for i in range(11))  # 1 … 1024
UNIT_BUCKETS = tuple(float(4**i) for i in range(-2, 11))  # 1/16 … 1,048,576
REAL_TIME_FACTOR_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0)
EMBEDDING_DURATION_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
"""A finer duration set for embedding and reranking models, whose 2-10 ms calls the conventions' set puts in one
bucket: ``init(buckets={"gen_ai.server.request.duration": "embedding"})`` or LLMOBS_BUCKETS."""
BUCKET_PRESETS = {"embedding": EMBEDDING_DURATION_BUCKETS}

QUEUE_DURATION = Instrument(
    "llmobs.inference.queue.duration",
    Kind.HISTOGRAM,
    "s",
    "Time a call waited before its work started (up to Inference.mark_started).",
    QUEUE_BUCKETS,
)
EXECUTION_DURATION = Instrument(
    "llmobs.inference.execution.duration",
    Kind.HISTOGRAM,
    "s",
    "Time from the start of a call's work (Inference.mark_started) to its end.",
    DURATION_BUCKETS,
)
FINISHED = Instrument(
    "llmobs.inference.finished",
    Kind.COUNTER,
    "{request}",
    "Calls that finished, by gen_ai.response.finish_reasons (one reason a point; each distinct reason once a call).",
)
UNITS = Instrument(
    "llmobs.inference.units",
    Kind.HISTOGRAM,
    "{unit}",
    "Input units per call (audio seconds, images, frames), by llmobs.unit; the rate of its sum is units per second.",
    UNIT_BUCKETS,
)
REAL_TIME_FACTOR = Instrument(
    "llmobs.inference.real_time_factor",
    Kind.HISTOGRAM,
    "1",
    "Processing time over the audio's duration (calls that recorded units in s); below 1 is faster than real time.",
    REAL_TIME_FACTOR_BUCKETS,
)
BATCH_SIZE = Instrument(
    "llmobs.engine.batch.size",
    Kind.HISTOGRAM,
    "{request}",
    "Requests per batch an engine ran (record_batch_size).",
    BATCH_SIZE_BUCKETS,
)
QUEUE_LENGTH = Instrument("llmobs.engine.queue.length", Kind.GAUGE, "{request}", "Requests waiting in the queue.")
KV_CACHE_UTILIZATION = Instrument(
    "llmobs.engine.kv_cache.utilization",
    Kind.GAUGE,
    "1",
    "Fraction of the KV cache in use.",
)
CACHE_LOOKUPS = Instrument(
    "llmobs.cache.lookups",
    Kind.COUNTER,
    "{lookup}",
    "Response-cache lookups, by llmobs.cache.name and llmobs.cache.result (hit, miss).",
)
CACHE_SAVED = Instrument(
    "llmobs.cache.saved.duration",
    Kind.COUNTER,
    "s",
    "Model time that cache hits saved, as the application estimated it.",
)
FINISH_REASONS = "gen_ai.response.finish_reasons"
UNIT = "llmobs.unit"
CACHE_NAME = "llmobs.cache.name"
CACHE_RESULT = "llmobs.cache.result"
OTHER = "_OTHER"
FINISH_REASON_VALUES = frozenset(
    {
        "stop", "length", "content_filter", "tool_calls", "function_call", "abort", "error",  # OpenAI, vLLM
        "end_turn", "max_tokens", "stop_sequence", "tool_use",  # Anthropic
        "eos_token", "cancelled", "timeout",  # TGI; cancelled and timed-out requests
    }
)  # fmt: skip
"""The finish reasons kept as they are; any other is counted as ``_OTHER`` (one warning), so the set stays bounded."""

# Logs and security events (llmobs/_logs.py, _security.py, _inventory.py, _audit.py). Records carry
# ``event.name``; fields SIEMs index follow the Elastic Common Schema where OpenTelemetry has none
# (``event.category``, ``event.outcome``, ``event.duration`` in nanoseconds).
SECURITY_EVENTS = Instrument(
    "llmobs.security.events",
    Kind.COUNTER,
    "{event}",
    "HTTP requests a SIEM cares about, by llmobs.security.event (kind) and http.route.",
)
VULNERABILITIES = Instrument(
    "llmobs.vulnerabilities",
    Kind.GAUGE,
    "{vulnerability}",
    "Known vulnerabilities of the installed distributions (llmobs audit), by vulnerability.severity.",
)
EVENT_NAME = "event.name"
EVENT_CATEGORY = "event.category"
EVENT_OUTCOME = "event.outcome"
EVENT_DURATION = "event.duration"
SECURITY_EVENT = "llmobs.security.event"
AUTHENTICATION_FAILURE = "authentication_failure"
AUTHORIZATION_FAILURE = "authorization_failure"
RATE_LIMITED = "rate_limited"
PAYLOAD_TOO_LARGE = "payload_too_large"
PROBE = "probe"
UNMATCHED_ROUTE = "_unmatched"
"""``http.route`` of a request no route matched: a fixed value, so that a scan adds one series."""
CLIENT_ADDRESS = "client.address"
ENDUSER_PSEUDO_ID = "enduser.pseudo.id"
CODE_FILE_PATH = "code.file.path"
CODE_FUNCTION_NAME = "code.function.name"
CODE_LINE_NUMBER = "code.line.number"
VULNERABILITY_ID = "vulnerability.id"
VULNERABILITY_SEVERITY = "vulnerability.severity"
PACKAGE_NAME = "package.name"
PACKAGE_VERSION = "package.version"
INVENTORY_COUNT = "llmobs.inventory.count"
INFERENCE_FAILURE_EVENT = "llmobs.inference.failure"
HTTP_ERROR_EVENT = "llmobs.http.server.error"
SECURITY_EVENT_NAME = "llmobs.security"
ACCESS_EVENT = "llmobs.access"
INVENTORY_EVENT = "llmobs.inventory"
VULNERABILITY_EVENT = "llmobs.vulnerability"

# Model quality (llmobs/_evaluation.py): evaluation results as the GenAI conventions define the
# gen_ai.evaluation.result event, and periodic evaluation runs over a test set.
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
RESPONSE_ID = "gen_ai.response.id"
EVALUATION_OUTCOME = "llmobs.evaluation.outcome"
"""An evaluation run's item: ``correct``, ``incorrect`` or ``error``."""

SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0)
"""Fine over 0..1 (most scores), then whole steps for 1..5 ratings."""

EVALUATION_SCORE = Instrument(
    "llmobs.evaluation.score",
    Kind.HISTOGRAM,
    "1",
    "Evaluation scores, by gen_ai.evaluation.name and gen_ai.request.model.",
    SCORE_BUCKETS,
)
EVALUATION_LABELS = Instrument(
    "llmobs.evaluation.labels",
    Kind.COUNTER,
    "{evaluation}",
    "Evaluation results, by gen_ai.evaluation.name, gen_ai.request.model and gen_ai.evaluation.score.label.",
)
EVALUATION_ACCURACY = Instrument(
    "llmobs.evaluation.accuracy",
    Kind.GAUGE,
    "1",
    "Fraction of items correct in the latest finished evaluation run, by gen_ai.evaluation.name and model.",
)
EVALUATION_ITEMS = Instrument(
    "llmobs.evaluation.items",
    Kind.COUNTER,
    "{item}",
    "Items evaluation runs went through, by llmobs.evaluation.outcome.",
)
EVALUATION_DURATION = Instrument(
    "llmobs.evaluation.duration",
    Kind.HISTOGRAM,
    "s",
    "Wall time of one evaluation run; error.type when it raised.",
    BATCH_DURATION_BUCKETS,
)

# Profiling (docs/profiling.md)

PROFILE_PATH = "llmobs.profile.path"
"""On a profiled call's span: the trace (torch.profiler) or stats (cProfile) file of that call."""
TORCH_MEMORY_ALLOCATED = Instrument(
    "llmobs.gpu.torch.memory.allocated",
    Kind.GAUGE,
    "By",
    "GPU memory PyTorch's caching allocator has handed to tensors in this process, by hw.id.",
)
TORCH_MEMORY_RESERVED = Instrument(
    "llmobs.gpu.torch.memory.reserved",
    Kind.GAUGE,
    "By",
    "GPU memory PyTorch's caching allocator holds from the driver in this process (allocated plus cached).",
)
TORCH_MEMORY_PEAK = Instrument(
    "llmobs.gpu.torch.memory.peak",
    Kind.GAUGE,
    "By",
    "The most GPU memory PyTorch's allocator has handed to tensors in this process since start (or its reset).",
)

# Self-telemetry (docs/performance.md): the SDK self-observability conventions where they define a name.

EXPORTED_POINTS = Instrument(
    OTEL_SDK_EXPORTER_METRIC_DATA_POINT_EXPORTED,
    Kind.COUNTER,
    "{data_point}",
    "Metric data points whose OTLP export finished, by otel.component.type; error.type when it failed.",
)
EXPORT_DURATION = Instrument(
    OTEL_SDK_EXPORTER_OPERATION_DURATION,
    Kind.HISTOGRAM,
    "s",
    "Duration of one export request (metrics, spans or log records), by otel.component.type; error.type on failure.",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LOCK_HOLD = Instrument(
    "llmobs.registry.lock.hold",
    Kind.HISTOGRAM,
    "s",
    "The longest time one export's snapshot held the registry lock that every record takes.",
    (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
EXPORTED_SPANS = Instrument(
    OTEL_SDK_EXPORTER_SPAN_EXPORTED,
    Kind.COUNTER,
    "{span}",
    "Spans whose export finished, by otel.component.type; error.type when it failed.",
)
EXPORTED_LOGS = Instrument(
    OTEL_SDK_EXPORTER_LOG_EXPORTED,
    Kind.COUNTER,
    "{log_record}",
    "Log records whose export finished, by otel.component.type; error.type when it failed.",
)
DROPPED_POINTS = Instrument(
    "llmobs.metric_data_point.dropped",
    Kind.COUNTER,
    "{data_point}",
    "Records and points llmobs lost, by error.type: overflow (counted without their attributes, past the "
    "series cap), invalid_value, unencodable (OTLP cannot carry it, or not in one request), export_failed "
    "(the final export failed).",
)
EXPORT_SIZE = Instrument(
    "llmobs.exporter.request.size",
    Kind.HISTOGRAM,
    "By",
    "Uncompressed size of one OTLP metric export request, by otel.component.type; error.type when it failed.",
    BODY_SIZE_BUCKETS,
)
SAMPLE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds, 0.1 ms to 5 s: how long a collector sample takes to read, and how late it begins."""
SAMPLE_DURATION = Instrument(
    "llmobs.collector.sample.duration",
    Kind.HISTOGRAM,
    "s",
    "Time one resource sample took to read (NVML, psutil), by llmobs.collector.source.",
    SAMPLE_BUCKETS,
)
SAMPLE_LAG = Instrument(
    "llmobs.collector.sample.lag",
    Kind.HISTOGRAM,
    "s",
    "Time from when a resource sample was due to when its reading began, by llmobs.collector.source.",
    SAMPLE_BUCKETS,
)
CALL_OVERHEAD = Instrument(
    "llmobs.inference.overhead",
    Kind.GAUGE,
    "s",
    "llmobs's own time per metrics-only call: a private decorated no-op timed on the export thread.",
)
# The batch processors report these themselves when OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true; the
# queue readings are gauges here, as the collector's are (see above).
PROCESSED_SPANS = Instrument(
    OTEL_SDK_PROCESSOR_SPAN_PROCESSED,
    Kind.COUNTER,
    "{span}",
    "Spans the batch span processor finished with, by otel.component.name; error.type (queue_full) when dropped.",
)
SPAN_QUEUE_SIZE = Instrument(OTEL_SDK_PROCESSOR_SPAN_QUEUE_SIZE, Kind.GAUGE, "{span}", "Spans in the queue now.")
SPAN_QUEUE_CAPACITY = Instrument(
    OTEL_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY, Kind.GAUGE, "{span}", "Spans the queue holds at most."
)
PROCESSED_LOGS = Instrument(
    OTEL_SDK_PROCESSOR_LOG_PROCESSED,
    Kind.COUNTER,
    "{log_record}",
    "Log records the batch processor finished with, by otel.component.name; error.type (queue_full) when dropped.",
)
LOG_QUEUE_SIZE = Instrument(
    OTEL_SDK_PROCESSOR_LOG_QUEUE_SIZE, Kind.GAUGE, "{log_record}", "Log records in the queue now."
)
LOG_QUEUE_CAPACITY = Instrument(
    OTEL_SDK_PROCESSOR_LOG_QUEUE_CAPACITY, Kind.GAUGE, "{log_record}", "Log records the queue holds at most."
)
PROCESSOR_INSTRUMENTS = {
    instrument.name: instrument
    for instrument in (
        PROCESSED_SPANS,
        SPAN_QUEUE_SIZE,
        SPAN_QUEUE_CAPACITY,
        PROCESSED_LOGS,
        LOG_QUEUE_SIZE,
        LOG_QUEUE_CAPACITY,
    )
}
"""The SDK processors' instruments llmobs takes, by name; it ignores any other the SDK creates."""
COMPONENT_TYPE = OTEL_COMPONENT_TYPE
COLLECTOR_SOURCE = "llmobs.collector.source"
GRPC_METRIC_EXPORTER = OtelComponentTypeValues.OTLP_GRPC_METRIC_EXPORTER.value
HTTP_METRIC_EXPORTER = OtelComponentTypeValues.OTLP_HTTP_METRIC_EXPORTER.value
GRPC_SPAN_EXPORTER = OtelComponentTypeValues.OTLP_GRPC_SPAN_EXPORTER.value
HTTP_SPAN_EXPORTER = OtelComponentTypeValues.OTLP_HTTP_SPAN_EXPORTER.value
GRPC_LOG_EXPORTER = OtelComponentTypeValues.OTLP_GRPC_LOG_EXPORTER.value
HTTP_LOG_EXPORTER = OtelComponentTypeValues.OTLP_HTTP_LOG_EXPORTER.value
OVERFLOWED = "overflow"
"""``error.type`` of a record counted in the overflow series, without its attributes (the series cap)."""
INVALID_VALUE = "invalid_value"
"""``error.type`` of a value dropped when recorded (it would make a sum non-finite or reach 2**63)."""
UNENCODABLE = "unencodable"
"""``error.type`` of a point left out of an export: OTLP cannot carry its value or an attribute, or it
is larger than one request."""
EXPORT_FAILED = "export_failed"
"""``error.type`` of points the final export could not deliver (earlier failures are sent again)."""
EXPORT_TIMEOUT = "timeout"
"""``error.type`` of an export that had no time left to send."""
OTHER_ERROR = "_OTHER"
"""``error.type`` of an export the backend refused or did not answer (the exporter does not say which)."""
