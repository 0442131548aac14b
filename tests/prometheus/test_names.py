"""Names as the OpenTelemetry "Prometheus and OpenMetrics compatibility" specification translates them,
checked against its own examples and the Collector translator's, and against every name llmobs emits."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmobs import semconv
from llmobs._prometheus.names import label, labels, metric_name
from llmobs.semconv import Instrument, Kind


@pytest.mark.parametrize(
    ("name", "kind", "unit", "expected"),
    [
        ("system.filesystem.usage", Kind.GAUGE, "By", "system_filesystem_usage_bytes"),
        ("system.network.dropped", Kind.COUNTER, "{packets}", "system_network_dropped_total"),
        ("system.network.dropped", Kind.GAUGE, "packets", "system_network_dropped_packets"),
        ("system.memory.utilization", Kind.GAUGE, "1", "system_memory_utilization_ratio"),
        ("requests.duration", Kind.HISTOGRAM, "ms", "requests_duration_milliseconds"),
        ("bytes.rate", Kind.GAUGE, "By/s", "bytes_rate_bytes_per_second"),
        ("tokens.rate", Kind.HISTOGRAM, "{token}/s", "tokens_rate_per_second"),
        ("requests", Kind.COUNTER, "1", "requests_total"),
        ("requests.total", Kind.COUNTER, "{request}", "requests_total"),
        ("latency_seconds", Kind.HISTOGRAM, "s", "latency_seconds"),
        ("(lambda).function.executions(#)", Kind.COUNTER, "", "lambda_function_executions_total"),
        ("2xx.requests", Kind.GAUGE, "", "_2xx_requests"),
    ],
)
def test_metric_names_follow_the_specification(name: str, kind: Kind, unit: str, expected: str) -> None:
    assert metric_name(Instrument(name, kind, unit, "")) == expected


def test_the_names_prometheus_users_query() -> None:
    assert metric_name(semconv.REQUEST_DURATION) == "gen_ai_server_request_duration_seconds"
    assert metric_name(semconv.TIME_TO_FIRST_TOKEN) == "gen_ai_server_time_to_first_token_seconds"
    assert metric_name(semconv.TOKEN_USAGE) == "llmobs_inference_token_usage"
    assert metric_name(semconv.OUTPUT_THROUGHPUT) == "llmobs_inference_output_throughput_per_second"
    assert metric_name(semconv.ACTIVE_REQUESTS) == "llmobs_inference_active_requests"
    assert metric_name(semconv.HTTP_SERVER_DURATION) == "http_server_request_duration_seconds"
    assert metric_name(semconv.GPU_UTILIZATION) == "hw_gpu_utilization_ratio"
    assert metric_name(semconv.GPU_ENERGY) == "hw_energy_joules_total"
    assert metric_name(semconv.GPU_TEMPERATURE) == "hw_temperature_celsius"
    assert metric_name(semconv.GPU_CLOCK) == "llmobs_gpu_clock_frequency_hertz"
    assert metric_name(semconv.BATCH_ITEMS) == "llmobs_batch_items_total"


def test_every_emitted_name_is_a_valid_and_distinct_prometheus_name() -> None:
    instruments = [v for v in vars(semconv).values() if isinstance(v, Instrument)]
    instruments += list(semconv.WINDOW_MAX.values())
    translated = [metric_name(i) for i in instruments]
    assert all(name.replace("_", "a").isalnum() and not name[0].isdigit() for name in translated)
    assert len(set(translated)) == len(translated)


def test_labels_are_sanitized_and_colliding_keys_joined_in_key_order() -> None:
    assert label("gen_ai.request.model") == "gen_ai_request_model"
    assert label("http.request.header.x-id") == "http_request_header_x_id"
    assert labels((("a.b", "1"), ("a_b", "2"), ("ok", True), ("n", 3), ("f", 0.5))) == {
        "a_b": "1;2",
        "ok": "true",
        "n": "3",
        "f": "0.5",
    }


def test_docs_list_every_translated_name() -> None:
    documented = (Path(__file__).parents[2] / "docs" / "prometheus.md").read_text()
    instruments = [v for v in vars(semconv).values() if isinstance(v, Instrument)]
    missing = [i.name for i in [*instruments, *semconv.WINDOW_MAX.values()] if f"`{metric_name(i)}" not in documented]
    assert not missing
