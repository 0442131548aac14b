"""Settings from arguments and OTEL_*/LLMOBS_* variables; every bad value fails at init with its fix."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import llmobs
from llmobs._config import ConfigError, load

SECRET = "s3cr3t-t0ken"


def test_no_endpoint_means_summary_only() -> None:
    settings = load({}, {})
    assert settings.summary and settings.metrics_otlp is None and settings.traces_otlp is None
    assert settings.traces is None and settings.export_interval == 10.0


def test_generic_endpoint_and_http_paths() -> None:
    settings = load(
        {},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4318/custom",
        },
    )
    assert settings.metrics_otlp is not None and settings.traces_otlp is not None
    assert settings.metrics_otlp.endpoint == "http://collector:4318/v1/metrics"
    assert settings.traces_otlp.endpoint == "http://tempo:4318/custom"  # per-signal URLs are used as given
    assert not settings.summary and settings.export_interval == 60.0


def test_per_signal_variables_override_generic_ones() -> None:
    settings = load(
        {},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_HEADERS": "a=1",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "b=2,Api-Key=x%20y",
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "2500",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "DELTA",
            "OTEL_METRIC_EXPORT_INTERVAL": "1500",
        },
    )
    metrics, traces = settings.metrics_otlp, settings.traces_otlp
    assert metrics is not None and traces is not None
    assert (metrics.protocol, traces.protocol) == ("http/protobuf", "grpc")
    assert dict(metrics.headers) == {"b": "2", "api-key": "x y"} and dict(traces.headers) == {"a": "1"}
    assert (metrics.timeout, traces.timeout) == (2.5, 10.0)
    assert metrics.temporality == "delta" and settings.export_interval == 1.5


def test_arguments_win_over_variables() -> None:
    settings = load(
        {
            "endpoint": "http://mine:4317",
            "protocol": "grpc",
            "headers": {"X-Key": "v"},
            "export_interval": 2,
            "traces": False,
        },
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://theirs:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
    )
    assert settings.metrics_otlp is not None and settings.metrics_otlp.endpoint == "http://mine:4317"
    assert settings.metrics_otlp.protocol == "grpc" and dict(settings.metrics_otlp.headers) == {"x-key": "v"}
    assert settings.traces is False and settings.traces_otlp is None and settings.export_interval == 2.0


def test_exporter_variables() -> None:
    both = load({}, {"OTEL_METRICS_EXPORTER": "otlp,console", "OTEL_TRACES_EXPORTER": "none"})
    assert both.summary and both.metrics_otlp is not None and both.metrics_otlp.endpoint == "http://localhost:4317"
    assert both.traces is False and both.traces_otlp is None
    silent = load({}, {"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"})
    assert not silent.summary and silent.metrics_otlp is None and silent.traces_otlp is not None
    assert load({}, {"OTEL_SDK_DISABLED": "true"}).disabled


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        ({"colour": "red"}, {}, "unknown option"),
        ({"protocol": "http/json"}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1"}, "use 'grpc' or 'http/protobuf'"),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "use the form http://host:port"),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:99999"}, "invalid port"),
        ({}, {"OTEL_METRIC_EXPORT_INTERVAL": "soon"}, "OTEL_METRIC_EXPORT_INTERVAL must be a number of milliseconds"),
        ({}, {"OTEL_METRIC_EXPORT_INTERVAL": "-5"}, "milliseconds from 50 to"),
        ({"export_interval": float("inf")}, {}, "export_interval"),
        ({"export_interval": 1e-9}, {}, "export_interval"),
        ({"shutdown_timeout": float("inf")}, {}, "shutdown_timeout"),
        ({}, {"LLMOBS_SHUTDOWN_TIMEOUT": "1e300"}, "LLMOBS_SHUTDOWN_TIMEOUT"),
        ({"collect_interval": 1e12}, {}, "collect_interval"),
        ({"gpu_devices": 3}, {}, "GPU indices"),
        ({"export_interval": 0}, {}, "export_interval"),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "10"}, "use e.g. 10000"),
        ({}, {"OTEL_METRICS_EXPORTER": "prometheus"}, "llmobs supports otlp, console, none"),
        ({}, {"OTEL_SDK_DISABLED": "yes"}, "'true' or 'false'"),
        ({}, {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "sometimes"}, "cumulative, delta, lowmemory"),
        ({"max_series": 0}, {}, "max_series"),
        ({}, {"LLMOBS_MAX_SERIES": "lots"}, "LLMOBS_MAX_SERIES must be a positive integer"),
        ({"traces": "yes"}, {}, "traces"),
        ({"service_name": ""}, {}, "service_name"),
        ({"headers": {"k": 1}}, {}, "dict of header names to str values"),
        ({"headers": {"bad key": "v"}}, {}, "dict of header names to str values"),
        ({}, {"LLMOBS_GPU": "maybe"}, "LLMOBS_GPU must be 'true' or 'false'"),
        ({}, {"LLMOBS_GPU_DEVICES": "0,one"}, "comma-separated GPU indices"),
        ({"gpu_devices": [-1]}, {}, "GPU indices"),
        ({}, {"OTEL_EXPORTER_OTLP_CERTIFICATE": "/no/such/ca.pem"}, "is not a readable file"),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": "/no/such/key.pem"}, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"),
    ],
)
def test_bad_values_fail_with_the_fix(options: dict[str, Any], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(options, env)


def test_malformed_headers_never_show_the_secret(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer {SECRET},{SECRET}")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as caught:
        llmobs.init()
    assert "OTEL_EXPORTER_OTLP_HEADERS is malformed at entry 2" in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET not in caplog.text
    settings = load({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1", "OTEL_EXPORTER_OTLP_HEADERS": f"k={SECRET}"})
    assert SECRET not in repr(settings)


def test_option_headers_add_to_the_variables_and_secrets_never_reach_a_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=x%2Cy"}
    target = load({"headers": {"B": "2"}}, env).metrics_otlp
    assert target is not None and dict(target.headers) == {"a": "1", "b": "2"}
    # An entry the SDK's own parser would log verbatim must fail here, even with headers={}.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20x,x-api-key:{SECRET}")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError, match="malformed at entry 2"):
        llmobs.init(endpoint="http://127.0.0.1:9", headers={})
    assert SECRET not in caplog.text


def test_init_rejects_bad_options_before_starting_anything() -> None:
    with pytest.raises(ConfigError, match="valid options are"):
        llmobs.init(service_name="x", endpont="http://typo:4317")
    from llmobs import _lifecycle

    assert _lifecycle.state.settings is None and _lifecycle.state.exports == []
