"""Exemplars: a traced call's duration carries its trace on its histogram bucket, over OTLP and in the
OpenMetrics scrape, so that a latency spike in Grafana links to its trace; a real Prometheus stores it."""

from __future__ import annotations

import time
from pathlib import Path

from opentelemetry.sdk.resources import Resource

import llmobs
from llmobs import semconv
from llmobs._aggregation import HistogramSeries, Registry
from llmobs._points import Points
from llmobs._prometheus.exposition import render, target_labels
from llmobs._prometheus.share import Share
from llmobs._prometheus.snapshot import Snapshot, from_metrics, merge
from tests.otlp_receiver import OTLPReceiver, free_port
from tests.prometheus.server import needs_prometheus, prometheus
from tests.prometheus.test_endpoint import OPENMETRICS, get

DURATION = "gen_ai.server.request.duration"


@llmobs.monitor_inference(model="traced", operation="chat")
def predict() -> str:
    time.sleep(0.05)
    return "ok"


def start(receiver: OTLPReceiver) -> str:
    port = free_port()
    llmobs.init("exemplars", endpoint=receiver.grpc_endpoint, prometheus=f"127.0.0.1:{port}", traces=True,
                gpu=False, host=False, export_interval=3600)  # fmt: skip
    return f"127.0.0.1:{port}"


def test_a_traced_call_links_its_bucket_to_its_span_over_otlp_and_openmetrics(receiver: OTLPReceiver) -> None:
    address = start(receiver)
    started = time.perf_counter()
    predict()
    took = time.perf_counter() - started
    assert llmobs.force_flush()
    (span,) = [s for s in receiver.spans() if s.name == "chat traced"]
    (point,) = receiver.latest(DURATION)
    assert [(e[1], e[2]) for e in point.exemplars] == [(span.trace_id, span.span_id)]
    # The call's duration: at least its 50 ms sleep, at most the call as timed here (a loaded machine
    # oversleeps). The scrape puts it on the bucket of that value: le="0.08" unless it took over 80 ms.
    value = point.exemplars[0][0]
    assert 0.05 <= value <= took
    bucket = next(bound for bound in semconv.DURATION_BUCKETS if value <= bound)
    scrape = get(f"http://{address}/metrics", OPENMETRICS).text
    (line,) = [line for line in scrape.splitlines() if "# {" in line]
    assert line.startswith("gen_ai_server_request_duration_seconds_bucket") and f'le="{bucket:g}"' in line
    assert f'trace_id="{span.trace_id}"' in line and f'span_id="{span.span_id}"' in line
    assert "# {" not in get(f"http://{address}/metrics").text  # the text format has no exemplars


def test_metrics_only_calls_carry_no_exemplars(receiver: OTLPReceiver) -> None:
    port = free_port()
    llmobs.init("plain", endpoint=receiver.grpc_endpoint, prometheus=f"127.0.0.1:{port}", traces=False,
                gpu=False, host=False, export_interval=3600)  # fmt: skip
    predict()
    assert llmobs.force_flush()
    assert receiver.latest(DURATION)[0].exemplars == ()
    assert "# {" not in get(f"http://127.0.0.1:{port}/metrics", OPENMETRICS).text


@needs_prometheus
def test_prometheus_stores_the_exemplar_with_its_trace_id(receiver: OTLPReceiver, tmp_path: Path) -> None:
    address = start(receiver)
    predict()
    assert llmobs.force_flush()
    (span,) = [s for s in receiver.spans() if s.name == "chat traced"]
    with prometheus(tmp_path, [address], "--enable-feature=exemplar-storage") as prom:
        prom.eventually("up", lambda v: v == 1)
        deadline = time.monotonic() + 20
        while not (found := prom.exemplars("gen_ai_server_request_duration_seconds_bucket")):
            assert time.monotonic() < deadline, "no exemplar stored"
            time.sleep(0.25)
        assert found[0]["labels"] == {"trace_id": span.trace_id, "span_id": span.span_id}


def test_exemplars_travel_from_worker_to_the_serving_process(tmp_path: Path) -> None:
    worker, holder = Share("s", str(tmp_path)), Share("s", str(tmp_path))
    registry = Registry()
    series = registry.series(semconv.REQUEST_DURATION, ((semconv.MODEL, "m"),))
    assert isinstance(series, HistogramSeries)
    series.record(0.3)
    series.exemplar(0.3, trace_id=0xABC, span_id=0xDEF)
    worker.publish(from_metrics(Points(Resource.create({})).build(registry.collect())))
    merged = merge(holder.gather(Snapshot(0, 0.0, {})))
    body, _ = render(merged, target_labels((), "h:1"), OPENMETRICS)
    (line,) = [line for line in body.decode().splitlines() if "# {" in line]
    assert 'le="0.32"' in line and f'trace_id="{0xABC:032x}"' in line and f'span_id="{0xDEF:016x}"' in line
    worker.leave()
    holder.leave()
