"""Per-request cost of HTTP instrumentation, called in-process (no sockets).

The same FastAPI app through ASGI and the same Flask app through WSGI: bare, with the usual
alternatives, and with llmobs (metrics only, and with tracing). Each case runs in its own
process, because a global tracer provider can be set once per process and prometheus metrics
register globally. Prints µs per request, overheads and PASS/MISS per target; exits 0.

    python -m benchmarks.bench_http [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
HEADERS = [(b"host", b"bench"), (b"user-agent", b"bench/1.0"), (b"accept", b"*/*"), (b"traceparent", TRACEPARENT)]
ASGI_CASES = ("fastapi-bare", "fastapi-prometheus", "fastapi-otel", "fastapi-llmobs", "fastapi-llmobs-tracing")
WSGI_CASES = ("flask-bare", "flask-otel", "flask-llmobs", "flask-llmobs-tracing")
TARGETS = (  # (case, baseline case, what overhead it may have, as a fraction of the baseline's)
    ("fastapi-llmobs", "fastapi-prometheus", 0.5),
    ("fastapi-llmobs-tracing", "fastapi-otel", 0.5),
    ("flask-llmobs-tracing", "flask-otel", 0.5),
)


def sdk_providers() -> tuple[Any, Any]:
    """SDK tracer and meter providers that do all their usual work but export nowhere."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from typing_extensions import override

    class Drop(SpanExporter):
        @override
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def _start_llmobs(tracing: bool) -> None:
    import llmobs

    os.environ["OTEL_METRICS_EXPORTER"] = "none"  # aggregate locally, export nothing
    if tracing:
        from opentelemetry import trace

        trace.set_tracer_provider(sdk_providers()[0])  # llmobs uses an installed provider
    llmobs.init(service_name="bench", traces=tracing)


def _fastapi(case: str) -> Any:
    import inspect

    from fastapi import FastAPI

    # FastAPI >= 0.165 traces by itself once a global provider is set (the llmobs-tracing case sets
    # one): off here, so that every case measures one instrumentation.
    native: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI).parameters:
        native["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(**native)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    if case == "fastapi-prometheus":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator().instrument(app)
    elif case == "fastapi-otel":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        tracer_provider, meter_provider = sdk_providers()
        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
    elif case.startswith("fastapi-llmobs"):
        from llmobs._middleware import instrument_fastapi

        _start_llmobs(case.endswith("tracing"))
        instrument_fastapi(app)
    return app


def _flask(case: str) -> Any:
    from flask import Flask

    app = Flask("bench")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    if case == "flask-otel":
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        tracer_provider, meter_provider = sdk_providers()
        FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
            app, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
    elif case.startswith("flask-llmobs"):
        from llmobs._middleware import instrument_flask

        _start_llmobs(case.endswith("tracing"))
        instrument_flask(app)
    return app


def _asgi_round(app: Any, n: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items/42",
        "raw_path": b"/items/42",
        "root_path": "",
        "query_string": b"",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"unexpected status {message['status']}")

    async def loop() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope, headers=list(HEADERS)), receive, send)
        return time.perf_counter() - start

    return asyncio.run(loop())


def _wsgi_round(app: Any, n: int) -> float:
    from werkzeug.test import EnvironBuilder

    headers = [(k.decode(), v.decode()) for k, v in HEADERS if k != b"host"]
    environ = EnvironBuilder(path="/items/42", headers=headers).get_environ()

    def start_response(status: str, _headers: Iterable[tuple[str, str]], _exc_info: Any = None) -> Callable[..., None]:
        if not status.startswith("200"):
            raise RuntimeError(f"unexpected status {status}")
        return lambda _data: None

    start = time.perf_counter()
    for _ in range(n):
        body = app(dict(environ), start_response)
        for _chunk in body:
            pass
        getattr(body, "close", lambda: None)()
    return time.perf_counter() - start


def run_case(case: str, quick: bool) -> float:
    """µs per request in the fastest of several rounds, after a warm-up round: on a shared machine
    the fastest round is the one least disturbed by other work."""
    n, rounds = (500, 5) if quick else (2000, 7)
    if case.startswith("fastapi"):
        app, one_round = _fastapi(case), _asgi_round
    else:
        app, one_round = _flask(case), _wsgi_round
    one_round(app, n // 5)
    return min(one_round(app, n) for _ in range(rounds)) / n * 1e6


def _measure(case: str, quick: bool) -> float:
    command = [sys.executable, "-m", "benchmarks.bench_http", "--case", case] + (["--quick"] if quick else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["us"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer requests: a rough figure in seconds")
    parser.add_argument("--case", choices=ASGI_CASES + WSGI_CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps({"case": args.case, "us": run_case(args.case, args.quick)}))
        return 0
    results: dict[str, float] = {}
    for _ in range(1 if args.quick else 3):  # passes interleave the cases; each keeps its best
        for case in ASGI_CASES + WSGI_CASES:
            results[case] = min(results.get(case, float("inf")), _measure(case, args.quick))
    for cases in (ASGI_CASES, WSGI_CASES):
        bare = cases[0]
        print(f"\n{'case':<24} {'µs/request':>10} {'overhead µs':>12}")
        for case in cases:
            overhead = "" if case == bare else f"{results[case] - results[bare]:12.1f}"
            print(f"{case:<24} {results[case]:10.1f} {overhead}")
    print()
    for case, baseline, limit in TARGETS:
        bare = "fastapi-bare" if case.startswith("fastapi") else "flask-bare"
        ours, theirs = results[case] - results[bare], results[baseline] - results[bare]
        ratio = ours / theirs if theirs > 0 else float("inf")
        verdict = "PASS" if ratio <= limit else "MISS"
        print(
            f"{verdict}: {case} overhead {ours:.1f} µs = {ratio:.2f}x {baseline}'s {theirs:.1f} µs (target <= {limit}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
