"""Settings from arguments and OTEL_*/LLMOBS_* variables; every bad value fails at init with its fix."""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import llmobs
from llmobs import _env, _lifecycle
from llmobs._config import ConfigError, load

SECRET = "s3cr3t-t0ken"


def test_no_endpoint_means_summary_only() -> None:
    settings = load(env={})
    assert settings.summary and settings.metrics_otlp is None and settings.traces_otlp is None
    assert settings.traces is None and settings.export_interval == 10.0


def test_generic_endpoint_and_http_paths() -> None:
    settings = load(
        env={
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
        env={
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
        endpoint="http://mine:4317",
        protocol="grpc",
        headers={"X-Key": "v"},
        export_interval=2,
        traces=False,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://theirs:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
    )
    assert settings.metrics_otlp is not None and settings.metrics_otlp.endpoint == "http://mine:4317"
    assert settings.metrics_otlp.protocol == "grpc" and dict(settings.metrics_otlp.headers) == {"x-key": "v"}
    assert settings.traces is False and settings.traces_otlp is None and settings.export_interval == 2.0


def test_exporter_variables() -> None:
    both = load(env={"OTEL_METRICS_EXPORTER": "otlp,console", "OTEL_TRACES_EXPORTER": "none"})
    assert both.summary and both.metrics_otlp is not None and both.metrics_otlp.endpoint == "http://localhost:4317"
    assert both.traces is False and both.traces_otlp is None
    silent = load(env={"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"})
    assert not silent.summary and silent.metrics_otlp is None and silent.traces_otlp is not None
    assert load(env={"OTEL_SDK_DISABLED": "true"}).disabled


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        ({"protocol": "http/json"}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1"}, "use 'grpc' or 'http/protobuf'"),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "use the form http://host:port"),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:99999"}, "invalid host or port"),
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
        ({}, {"OTEL_METRICS_EXPORTER": "graphite"}, "llmobs supports otlp, console, prometheus, none"),
        ({}, {"OTEL_TRACES_EXPORTER": "prometheus"}, "llmobs supports otlp, console, none"),
        ({}, {"OTEL_SDK_DISABLED": "yes"}, "'true' or 'false'"),
        ({}, {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "sometimes"}, "cumulative, delta, lowmemory"),
        ({"max_series": 0}, {}, "max_series"),
        ({}, {"LLMOBS_MAX_SERIES": "lots"}, "LLMOBS_MAX_SERIES must be an integer from 1 to 1000000"),
        ({}, {"LLMOBS_MAX_SERIES": "10000000000"}, "LLMOBS_MAX_SERIES must be an integer from 1 to 1000000"),
        ({"max_series": 10**7}, {}, "max_series"),
        # Checked whether or not an endpoint is set: what fails in the cluster fails on a laptop.
        ({}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "use 'grpc' or 'http/protobuf'"),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
        ({}, {"OTEL_EXPORTER_OTLP_TIMEOUT": "10"}, "use e.g. 10000"),
        ({}, {"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "no-equals"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS is malformed"),
        ({}, {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "collector"}, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
        ({"endpoint": "http://my host:4317"}, {}, "invalid host name"),
        ({"endpoint": "http://c:0"}, {}, "has port 0"),
        ({"endpoint": "http://[::1:4317"}, {}, "invalid host or port"),
        ({}, {"OTEL_EXPORTER_OTLP_INSECURE": "yes"}, "OTEL_EXPORTER_OTLP_INSECURE must be 'true' or 'false'"),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_INSECURE": "1"}, "OTEL_EXPORTER_OTLP_TRACES_INSECURE"),
        (
            {},
            {"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "base2_exponential_bucket_histogram"},
            "exponential histograms are not supported",
        ),
        ({}, {"OTEL_PROPAGATORS": "tracecontext,b3multi"}, "not installed: b3multi; installed: baggage, none"),
        ({}, {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "-1"}, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT must be an integer"),
        ({}, {"OTEL_SPAN_EVENT_COUNT_LIMIT": "many"}, "OTEL_SPAN_EVENT_COUNT_LIMIT must be an integer"),
        ({}, {"LLMOBS_FAIL_OPEN": "maybe"}, "LLMOBS_FAIL_OPEN must be 'true' or 'false'"),
        ({"capture_exception_messages": 1}, {}, "capture_exception_messages"),
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
        load(**options, env=env)


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
    settings = load(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1", "OTEL_EXPORTER_OTLP_HEADERS": f"k={SECRET}"})
    assert SECRET not in repr(settings)


def test_option_headers_add_to_the_variables_and_secrets_never_reach_a_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=x%2Cy"}
    target = load(headers={"B": "2"}, env=env).metrics_otlp
    assert target is not None and dict(target.headers) == {"a": "1", "b": "2"}
    # An entry the SDK's own parser would log verbatim must fail here, even with headers={}.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20x,x-api-key:{SECRET}")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError, match="malformed at entry 2"):
        llmobs.init(endpoint="http://127.0.0.1:9", headers={})
    assert SECRET not in caplog.text


def test_a_misspelt_option_is_a_type_error_and_starts_nothing() -> None:
    with pytest.raises(TypeError, match="endpont"):
        llmobs.init(service_name="x", endpont="http://typo:4317")  # type: ignore[call-arg]
    assert _lifecycle.state.settings is None and _lifecycle.state.exports == []


def test_init_has_the_documented_signature() -> None:
    parameters = inspect.signature(llmobs.init).parameters
    assert list(parameters)[0] == "service_name"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(parameters.values())[1:])
    assert set(parameters) == set(inspect.signature(load).parameters) - {"env"}
    documented = Path(__file__).parents[1].joinpath("docs", "configuration.md").read_text()
    assert all(f"`{name}`" in documented for name in parameters)
    block = documented.split("```python\n", 1)[1].split("```", 1)[0]
    assert re.findall(r"(\w+)=None", block) == list(parameters)  # the signature at the top, in order


def test_every_variable_is_documented_once() -> None:
    documented = Path(__file__).parents[1].joinpath("docs", "configuration.md").read_text()
    names = [value for key, value in vars(_env).items() if key.isupper() and isinstance(value, str)]
    assert names and all(f"`{name}`" in documented for name in names), [n for n in names if f"`{n}`" not in documented]


@pytest.mark.parametrize("encoded", ["Bearer%0D%0Ax-injected: 1", "Bearer%0Ax", "%20Bearer", "Bearer%20", "tab%09"])
def test_header_values_are_checked_as_sent_and_never_shown(encoded: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    value = f"{encoded}{SECRET}" if encoded.endswith(("%20", "%0A")) is False else f"{SECRET}{encoded}"
    with pytest.raises(ConfigError, match="entry 2: the URL-decoded value has control characters") as caught:
        load(env={"OTEL_EXPORTER_OTLP_HEADERS": f"a=1,authorization={value}"})
    assert SECRET not in str(caught.value) and "Bearer" not in str(caught.value)
    with pytest.raises(ConfigError, match="value of 'authorization' has control characters") as caught:
        load(headers={"authorization": unquote(value)}, env={})
    assert SECRET not in str(caught.value) and SECRET not in caplog.text
    inner = load(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1", "OTEL_EXPORTER_OTLP_HEADERS": "k=Bearer%20x"})
    assert inner.metrics_otlp is not None and dict(inner.metrics_otlp.headers) == {"k": "Bearer x"}


def test_endpoint_errors_never_show_a_password() -> None:
    for url in (f"http://user:{SECRET}@my host:4317", f"http://user:{SECRET}@c:0", f"ftp://user:{SECRET}@c:1"):
        with pytest.raises(ConfigError) as caught:
            load(env={"OTEL_EXPORTER_OTLP_ENDPOINT": url})
        assert SECRET not in str(caught.value) and "//***@" in str(caught.value)
    ipv6 = load(endpoint="http://[::1]:4317", env={})
    assert ipv6.metrics_otlp is not None and ipv6.metrics_otlp.endpoint == "http://[::1]:4317"


def test_tls_files_must_be_pem(tmp_path: Path) -> None:
    der, pem = tmp_path / "ca.der", tmp_path / "ca.pem"
    der.write_bytes(b"\x30\x82\x01\x0a binary")
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_CERTIFICATE=.* is not a PEM file"):
        load(env={"OTEL_EXPORTER_OTLP_CERTIFICATE": str(der)})
    assert load(env={"OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE": str(pem)}).summary


def test_known_values_of_the_variables_others_read_pass() -> None:
    env = {
        "OTEL_PROPAGATORS": "tracecontext, baggage",
        "OTEL_EXPORTER_OTLP_INSECURE": "TRUE",
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "explicit_bucket_histogram",
        "LLMOBS_MAX_SERIES": "1000000",
    }
    assert load(env=env).max_series == 1_000_000
    assert load(env={"OTEL_PROPAGATORS": "none"}).summary


def test_span_limits_are_finite_by_default_and_follow_the_variables() -> None:
    limits = load(env={}).span_limits
    assert limits["max_attribute_length"] == limits["max_span_attribute_length"] == 4096
    assert limits["max_events"] == limits["max_attributes"] == limits["max_event_attributes"] == 128
    limits = load(
        env={
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100",
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "50",
            "OTEL_ATTRIBUTE_COUNT_LIMIT": "10",
            "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT": "3",
        }
    ).span_limits
    assert (limits["max_attribute_length"], limits["max_span_attribute_length"]) == (100, 50)
    assert (limits["max_span_attributes"], limits["max_event_attributes"], limits["max_link_attributes"]) == (10, 10, 3)


@pytest.mark.parametrize("switch", ["argument", "variable"])
def test_fail_open_logs_one_error_without_the_secret_and_turns_llmobs_off(
    switch: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%0A{SECRET}")
    if switch == "variable":
        monkeypatch.setenv("LLMOBS_FAIL_OPEN", "true")
    caplog.set_level(logging.DEBUG)
    llmobs.init(service_name="x", fail_open=True if switch == "argument" else None)

    @llmobs.monitor_inference(model="m", operation="chat")
    def predict() -> int:
        return 7

    assert predict() == 7
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "fail-open" in errors[0].getMessage() and "OTEL_EXPORTER_OTLP_HEADERS" in caplog.text
    assert SECRET not in caplog.text
    settings = _lifecycle.state.settings
    assert settings is not None and settings.disabled and _lifecycle.state.exports == []


def test_without_fail_open_the_same_config_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%0Ax")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_HEADERS"):
        llmobs.init(service_name="x")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_HEADERS"):
        llmobs.init(service_name="x", fail_open=False)
