"""A real OTLP receiver (gRPC + HTTP/protobuf) for tests, decoding what exporters send into plain Python."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

Mode = Literal["ok", "refuse", "hang", "throttle"]
Transport = Literal["grpc", "http"]
T = TypeVar("T")

# Signal name -> (request type, response type), also the HTTP path suffix.
_SIGNALS: dict[str, tuple[type[Message], type[Message]]] = {
    "metrics": (metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
    "traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}
_TEMPORALITY: dict[int | None, str] = {
    AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative",
    AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA: "delta",
}


@dataclass(frozen=True)
class Received:
    """One export request as it arrived: signal ("metrics"/"traces"/"logs"), transport, lowercased headers, protobuf."""

    signal: str
    transport: Transport
    headers: dict[str, Any]
    message: Any

    @property
    def size(self) -> int:
        """The serialized (uncompressed) size of the request in bytes."""
        return int(self.message.ByteSize())


@dataclass(frozen=True)
class MetricPoint:
    """One metric data point, flattened with its metric, scope and resource."""

    name: str
    unit: str
    description: str
    kind: str
    monotonic: bool | None
    temporality: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    value: int | float | None  # sum and gauge only
    count: int | None  # histograms only, like the fields below
    sum: float | None
    bucket_counts: list[int]  # explicit-bucket histogram only
    explicit_bounds: list[float]
    min: float | None
    max: float | None
    start_time_unix_nano: int
    time_unix_nano: int
    transport: Transport
    exemplars: tuple[tuple[float, str, str], ...] = ()
    """(value, trace id, span id) in hex, as the spans carry them."""


@dataclass(frozen=True)
class SpanRecord:
    """One span, with ids as hex strings and enums as their proto names."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: str
    attributes: dict[str, Any]
    status_code: str
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    start_time_unix_nano: int
    end_time_unix_nano: int
    resource: dict[str, Any]
    scope: str
    transport: Transport


@dataclass(frozen=True)
class LogRecord:
    """One log record, with ids as hex strings ("" when unset) and the severity as its proto name."""

    event_name: str
    severity_number: str
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    trace_id: str
    span_id: str
    time_unix_nano: int
    resource: dict[str, Any]
    scope: str
    transport: Transport


def _value(v: AnyValue) -> Any:
    """Convert an OTLP AnyValue to the matching Python value."""
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return _attrs(v.kvlist_value.values)
    return getattr(v, which) if which else None


def _attrs(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    """Convert repeated KeyValue to a dict."""
    return {kv.key: _value(kv.value) for kv in kvs}


def _optional(dp: Message, name: str) -> Any:
    """A data point field, or None when the point type lacks it or it is unset (optional proto3 field)."""
    return getattr(dp, name) if name in dp.DESCRIPTOR.fields_by_name and dp.HasField(name) else None


def _points(rec: Received) -> list[MetricPoint]:
    """Flatten one metrics request into MetricPoints."""
    out: list[MetricPoint] = []
    for rm in rec.message.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind)
                number, histogram = kind in ("sum", "gauge"), kind == "histogram"
                out += [
                    MetricPoint(
                        name=m.name,
                        unit=m.unit,
                        description=m.description,
                        kind=kind,
                        monotonic=data.is_monotonic if kind == "sum" else None,
                        temporality=_TEMPORALITY.get(getattr(data, "aggregation_temporality", None)),
                        attributes=_attrs(dp.attributes),
                        resource=_attrs(rm.resource.attributes),
                        scope=sm.scope.name,
                        value=getattr(dp, dp.WhichOneof("value")) if number else None,
                        count=None if number else dp.count,
                        sum=_optional(dp, "sum"),
                        bucket_counts=list(dp.bucket_counts) if histogram else [],
                        explicit_bounds=list(dp.explicit_bounds) if histogram else [],
                        min=_optional(dp, "min"),
                        max=_optional(dp, "max"),
                        start_time_unix_nano=dp.start_time_unix_nano,
                        time_unix_nano=dp.time_unix_nano,
                        transport=rec.transport,
                        exemplars=tuple(
                            (getattr(e, e.WhichOneof("value")), e.trace_id.hex(), e.span_id.hex()) for e in dp.exemplars
                        ),
                    )
                    for dp in data.data_points
                ]
    return out


def _spans(rec: Received) -> list[SpanRecord]:
    """Flatten one traces request into SpanRecords."""
    return [
        SpanRecord(
            name=s.name,
            trace_id=s.trace_id.hex(),
            span_id=s.span_id.hex(),
            parent_span_id=s.parent_span_id.hex(),
            kind=Span.SpanKind.Name(s.kind),
            attributes=_attrs(s.attributes),
            status_code=Status.StatusCode.Name(s.status.code),
            status_message=s.status.message,
            events=[(e.name, _attrs(e.attributes)) for e in s.events],
            start_time_unix_nano=s.start_time_unix_nano,
            end_time_unix_nano=s.end_time_unix_nano,
            resource=_attrs(rs.resource.attributes),
            scope=ss.scope.name,
            transport=rec.transport,
        )
        for rs in rec.message.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]


def _logs(rec: Received) -> list[LogRecord]:
    """Flatten one logs request into LogRecords."""
    return [
        LogRecord(
            event_name=r.event_name,
            severity_number=SeverityNumber.Name(r.severity_number),
            severity_text=r.severity_text,
            body=_value(r.body) if r.HasField("body") else None,
            attributes=_attrs(r.attributes),
            trace_id=r.trace_id.hex(),
            span_id=r.span_id.hex(),
            time_unix_nano=r.time_unix_nano,
            resource=_attrs(rl.resource.attributes),
            scope=sl.scope.name,
            transport=rec.transport,
        )
        for rl in rec.message.resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]


class OTLPReceiver:
    """OTLP metrics/traces/logs receiver on 127.0.0.1 over gRPC and HTTP; `mode` simulates a failing backend.

    "refuse" answers UNAVAILABLE / HTTP 503, "hang" never answers, "throttle" answers `throttle_status`
    (HTTP 429 or 503, gRPC RESOURCE_EXHAUSTED or UNAVAILABLE) with `retry_after` seconds in a Retry-After
    header (gRPC: RetryInfo). `max_receive_bytes` refuses larger requests as a Collector does (its gRPC
    default is 4 MiB): gRPC RESOURCE_EXHAUSTED, HTTP 413.
    """

    def __init__(self, max_receive_bytes: int | None = None) -> None:
        self.mode: Mode = "ok"
        self.throttle_status = 429
        self.retry_after = 1
        self.max_receive_bytes = max_receive_bytes
        self.attempts = 0  # export calls that arrived, whatever the mode answered
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._released = threading.Event()
        self._grpc: grpc.Server | None = None
        self._grpc_port = 0
        self._pool = ThreadPoolExecutor(max_workers=16)
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    def start(self) -> OTLPReceiver:
        """Bind both servers to OS-picked ports and serve in background threads."""
        options = (
            [] if self.max_receive_bytes is None else [("grpc.max_receive_message_length", self.max_receive_bytes)]
        )
        self._grpc = grpc.server(self._pool, options=options)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Servicer(self), self._grpc)  # type: ignore[no-untyped-call]
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self), self._grpc)  # type: ignore[no-untyped-call]
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Servicer(self), self._grpc)  # type: ignore[no-untyped-call]
        self._grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._http_post(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http_thread = threading.Thread(target=self._http.serve_forever, args=(0.02,), daemon=True)
        self._http_thread.start()
        return self

    def stop(self) -> None:
        """Release hung handlers and stop both servers, without waiting on in-flight requests."""
        self._released.set()
        if self._grpc is not None:
            self._grpc.stop(grace=0).wait(2)
            self._pool.shutdown(wait=False)
        if self._http is not None and self._http_thread is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http_thread.join(2)

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def grpc_endpoint(self) -> str:
        assert self._grpc is not None, "receiver not started"
        return f"http://127.0.0.1:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        assert self._http is not None, "receiver not started"
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def _record(self, signal: str, transport: Transport, headers: dict[str, Any], message: Message) -> None:
        with self._lock:
            self._received.append(Received(signal, transport, headers, message))

    def _arrived(self) -> None:
        with self._lock:
            self.attempts += 1

    def _grpc_export(self, request: Message, context: grpc.ServicerContext) -> Message:
        signal = next(name for name, (request_type, _) in _SIGNALS.items() if isinstance(request, request_type))
        self._arrived()
        mode = self.mode
        if mode == "hang":  # also give up once the client went away, so workers are not exhausted
            while context.is_active() and not self._released.wait(0.05):
                pass
        if mode == "throttle":
            delay = RetryInfo(retry_delay=Duration(seconds=self.retry_after)).SerializeToString()
            context.set_trailing_metadata((("google.rpc.retryinfo-bin", delay),))
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if self.throttle_status == 429 else grpc.StatusCode.UNAVAILABLE
            context.abort(code, "test receiver mode=throttle")
        if mode != "ok":
            context.abort(grpc.StatusCode.UNAVAILABLE, f"test receiver mode={mode}")
        self._record(signal, "grpc", {k.lower(): v for k, v in context.invocation_metadata()}, request)
        return _SIGNALS[signal][1]()

    def _http_post(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        signal = h.path.removeprefix("/v1/")
        if signal not in _SIGNALS:
            h.send_error(404)
            return
        self._arrived()
        mode = self.mode
        if mode == "hang":
            self._released.wait()
            return
        if mode == "refuse":
            h.send_error(503)
            return
        if mode == "throttle":
            h.send_response(self.throttle_status)
            h.send_header("Retry-After", str(self.retry_after))
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if self.max_receive_bytes is not None and len(body) > self.max_receive_bytes:
            h.send_error(413)
            return
        if h.headers.get("Content-Type") != "application/x-protobuf":
            h.send_error(415)
            return
        encoding = h.headers.get("Content-Encoding", "")
        body = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body) if encoding == "deflate" else body
        request_type, response_type = _SIGNALS[signal]
        self._record(signal, "http", {k.lower(): v for k, v in h.headers.items()}, request_type.FromString(body))
        payload = response_type().SerializeToString()
        h.send_response(200)
        h.send_header("Content-Type", "application/x-protobuf")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    @property
    def requests(self) -> list[Received]:
        """Every accepted export request, in arrival order."""
        with self._lock:
            return list(self._received)

    @property
    def headers(self) -> list[dict[str, Any]]:
        """Lowercased headers/metadata of each accepted request, in arrival order."""
        return [r.headers for r in self.requests]

    def clear(self) -> None:
        """Forget everything received so far."""
        with self._lock:
            self._received.clear()
            self.attempts = 0

    def metrics(self) -> list[MetricPoint]:
        """All metric data points received, flattened, in arrival order."""
        return [p for r in self.requests if r.signal == "metrics" for p in _points(r)]

    def latest(self, name: str, attributes: dict[str, Any] | None = None) -> list[MetricPoint]:
        """Points of `name` from the newest request containing it, then kept if all `attributes` items match."""
        for r in reversed(self.requests):
            points = [p for p in _points(r) if p.name == name] if r.signal == "metrics" else []
            if points:
                want = (attributes or {}).items()
                return [p for p in points if all(p.attributes.get(k) == v for k, v in want)]
        return []

    def spans(self) -> list[SpanRecord]:
        """All spans received, in arrival order."""
        return [s for r in self.requests if r.signal == "traces" for s in _spans(r)]

    def logs(self) -> list[LogRecord]:
        """All log records received, in arrival order."""
        return [record for r in self.requests if r.signal == "logs" for record in _logs(r)]

    def wait_for(self, predicate: Callable[[OTLPReceiver], T], timeout: float = 10.0) -> T:
        """Poll every 20 ms until `predicate(self)` is truthy and return it; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while not (result := predicate(self)):
            if time.monotonic() > deadline:
                metrics, spans = sorted({p.name for p in self.metrics()}), [s.name for s in self.spans()]
                logs = len(self.logs())
                raise AssertionError(
                    f"timed out after {timeout}s; received metrics={metrics} spans={spans} logs={logs}"
                )
            time.sleep(0.02)
        return result


class _Servicer(
    metrics_service_pb2_grpc.MetricsServiceServicer,
    trace_service_pb2_grpc.TraceServiceServicer,
    logs_service_pb2_grpc.LogsServiceServicer,
):
    """The three gRPC services in one: the request type tells which signal arrived."""

    def __init__(self, receiver: OTLPReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        return self._receiver._grpc_export(request, context)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for "nothing listens here" endpoints)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def blackhole() -> Iterator[str]:
    """Yield an endpoint that accepts TCP connections but never reads or answers (a hung backend)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)
    conns: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            with suppress(TimeoutError):  # wake up regularly to look at `done`
                conns.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(1)
        for c in conns:
            c.close()
        listener.close()
