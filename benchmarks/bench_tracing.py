"""Latency of a real uvicorn server under wrk, bare, with llmobs metrics only, and with tracing on:
``python -m benchmarks.bench_tracing [--quick]``.

Each case is a fresh uvicorn subprocess on loopback serving the same FastAPI app: one route awaiting a
``@llmobs.monitor_inference`` function that awaits 1 ms (an engine working elsewhere, as in an inference
server). With tracing, spans go over OTLP/gRPC to a sink in this process that keeps each request's
bytes and counts their spans afterwards, so that the exporter does all its real work while the receiver
costs almost nothing during the run. Cases are interleaved and repeated; each case's median and best
pass are printed, with p99(case) / p99(bare) against the 1.5 target for tracing (never asserted).

The load is fixed, not saturating: wrk (Debian's; it has no rate option) keeps ``CONNECTIONS`` open
and its Lua ``delay()`` makes each wait ``PAUSE_MS`` between a response and its next request, so every
case is offered about the same requests/s whatever its latency (wrk times a request from its send, so
the pause is not in the latency). A saturated server's p99 measures its queue, not our cost.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

CASES = ("bare", "metrics", "tracing")
DIAGNOSTIC_CASES = ("tracing-drop", "tracing-frozen", "tracing-sdk-spans")
"""Run on request only (``--cases``): tracing whose spans an exporter that drops them takes (no OTLP),
tracing in an app that calls ``gc.freeze()`` after start-up (full collections then skip its heap), and
tracing with the SDK's spans queued and encoded at export, as before llmobs encoded them as they end."""
EXPORTING = ("tracing", "tracing-frozen", "tracing-sdk-spans")
CONNECTIONS = 8
PAUSE_MS = 8
WORK_S = 0.001
WARMUP_REQUESTS = 200
TARGET = 1.5
ROOT = Path(__file__).resolve().parents[1]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Run:
    """One wrk run against one case: latencies in ms, requests/s, requests served, spans exported."""

    p50: float
    p99: float
    rps: float
    requests: int
    errors: int
    server_spans: int | None


class Sink:
    """An OTLP/gRPC receiver that answers every export at once and keeps trace requests undecoded."""

    def __init__(self) -> None:
        self.traces: list[bytes] = []
        self._server = grpc.server(ThreadPoolExecutor(4))
        self._server.add_generic_rpc_handlers((self,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        keep = self.traces.append if "TraceService" in handler_call_details.method else None

        def export(request: bytes, _context: grpc.ServicerContext) -> bytes:
            if keep is not None:
                keep(request)
            return b""  # an empty Export*ServiceResponse: all accepted

        return grpc.unary_unary_rpc_method_handler(export, lambda b: b, lambda b: b)

    def take_server_spans(self) -> int:
        """Decode what arrived since the last call; the number of SERVER spans (one per request)."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        received, self.traces = self.traces, []
        count = 0
        for raw in received:
            for resource in ExportTraceServiceRequest.FromString(raw).resource_spans:
                for scope in resource.scope_spans:
                    count += sum(span.kind == Span.SPAN_KIND_SERVER for span in scope.spans)
        return count

    def stop(self) -> None:
        self._server.stop(grace=None)


def build_app(case: str) -> Any:
    """The served app: bare, or instrumented by llmobs (``init`` from the environment)."""
    import asyncio
    import inspect

    from fastapi import FastAPI

    native: dict[str, Any] = {}  # FastAPI >= 0.165 traces by itself once a provider is set: off here
    if "telemetry" in inspect.signature(FastAPI).parameters:
        native["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(**native)

    async def generate(prompt: str) -> str:
        await asyncio.sleep(WORK_S)
        return prompt

    if case != "bare":
        import llmobs

        if case == "tracing-drop":
            _install_dropping_provider()
        if case == "tracing-sdk-spans":
            from llmobs import _final_spans

            _final_spans.ENCODES = False
        llmobs.init(service_name="bench-tracing", traces=case != "metrics")
        generate = llmobs.monitor_inference(model="bench", operation="chat")(generate)
        llmobs.instrument_fastapi(app)
    if case == "tracing-frozen":
        import gc

        gc.freeze()

    @app.get("/generate")
    async def endpoint() -> dict[str, str]:
        return {"text": await generate("hello")}

    return app


def _install_dropping_provider() -> None:
    """A global SDK provider whose batch processor hands spans to an exporter that drops them."""
    from opentelemetry import trace

    from benchmarks.bench_http import sdk_providers

    trace.set_tracer_provider(sdk_providers()[0])


def serve(case: str, port: int) -> None:
    """The server subprocess: uvicorn, one worker, as deployed (no access log)."""
    import uvicorn

    uvicorn.run(build_app(case), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(case: str, sink: Sink) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink.port}",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        LLMOBS_GPU="false",
        LLMOBS_HOST="false",
    )
    if case == "tracing-drop":
        env["OTEL_TRACES_EXPORTER"] = "none"  # the dropping provider is the only span pipeline
    return env


def _get(url: str, timeout: float = 5) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        response.read()


def _started(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            return _get(url, timeout=1)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if found is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(found[1]) * _UNITS[found[2]]


def parse_wrk(output: str) -> tuple[float, float, float, int, int]:
    """p50 and p99 (ms), requests/s, requests completed, and errors from ``wrk --latency`` output."""
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M)[1])  # type: ignore[index]
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)[1])  # type: ignore[index]
    requests = int(re.search(r"^\s+(\d+) requests in", output, re.M)[1])  # type: ignore[index]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return p50, p99, rps, requests, errors + (int(non_2xx[1]) if non_2xx else 0)


def run_case(case: str, sink: Sink, seconds: int, script: Path) -> Run:
    """Start the case's server, warm it up, run wrk, stop it with SIGTERM (llmobs flushes then)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/generate"
    command = [sys.executable, "-m", "benchmarks.bench_tracing", "--serve", case, "--port", str(port)]
    process = subprocess.Popen(command, env=_environment(case, sink), cwd=ROOT)
    try:
        _started(url, process)
        for _ in range(WARMUP_REQUESTS - 1):
            _get(url)
        wrk = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url]
        output = subprocess.run(wrk, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    p50, p99, rps, requests, errors = parse_wrk(output)
    spans = sink.take_server_spans() if case in EXPORTING else None
    return Run(p50, p99, rps, requests + WARMUP_REQUESTS, errors, spans)


def _median(runs: list[Run], field: Callable[[Run], float]) -> float:
    return statistics.median(field(run) for run in runs)


def report(results: dict[str, list[Run]]) -> None:
    """Medians over the passes, and the best pass's p99: on a shared machine the least disturbed one."""
    print(f"\n{'case':<14} {'p50 ms':>7} {'p99 ms':>7} {'best p99':>9} {'req/s':>6} {'errors':>6}")
    for case, runs in results.items():
        print(
            f"{case:<14} {_median(runs, lambda r: r.p50):7.2f} {_median(runs, lambda r: r.p99):7.2f} "
            f"{min(r.p99 for r in runs):9.2f} {_median(runs, lambda r: r.rps):6.0f} {sum(r.errors for r in runs):6d}"
        )
    for case in EXPORTING:
        for run in results.get(case, []):
            lost = max(0, run.requests - (run.server_spans or 0))
            print(
                f"{case}: {run.server_spans} server spans exported for {run.requests} requests answered ({lost} lost)"
            )
    bare = results["bare"]
    print()
    for case, runs in results.items():
        if case != "bare":
            median = _median(runs, lambda r: r.p99) / _median(bare, lambda r: r.p99)
            best = min(r.p99 for r in runs) / min(r.p99 for r in bare)
            target = f"  (target <= {TARGET})" if case == "tracing" else ""
            print(f"p99({case}) / p99(bare): median {median:.2f}, best pass {best:.2f}{target}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one short pass: a rough figure in a minute")
    parser.add_argument("--cases", nargs="+", choices=CASES + DIAGNOSTIC_CASES, default=list(CASES))
    parser.add_argument("--serve", choices=CASES + DIAGNOSTIC_CASES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    cases = ["bare", *(case for case in args.cases if case != "bare")]
    seconds, repeats = (3, 1) if args.quick else (10, 5)
    print(f"wrk -t1 -c{CONNECTIONS} -d{seconds}s --latency, {PAUSE_MS} ms pause per connection; {repeats} passes")
    sink = Sink()
    results: dict[str, list[Run]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder, "pause.lua")
        script.write_text(f"function delay()\n  return {PAUSE_MS}\nend\n")
        try:
            for _ in range(repeats):  # passes interleave the cases
                for case in cases:
                    results[case].append(run_case(case, sink, seconds, script))
        finally:
            sink.stop()
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
