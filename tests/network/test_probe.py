"""The dependency probe against real loopback targets: a TCP listener, an HTTP server with a known
delay, a black hole (connect and HTTP), a refused port; exported over OTLP to the test receiver."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

import llmobs
from llmobs import ConfigError
from llmobs._aggregation import Registry, ValueSnapshot
from llmobs._collector.probe import Prober
from llmobs._config import load
from llmobs._lifecycle import state
from llmobs._points import Points
from llmobs._summary import SummaryExporter
from llmobs._targets import parse_targets
from tests.network.servers import DELAY, connect_black_hole, delayed_http, refused_port, tcp_listener
from tests.otlp_receiver import MetricPoint, OTLPReceiver, blackhole

TIMEOUT = 0.5
DURATION = "llmobs.network.probe.duration"
UP = "llmobs.network.probe.up"


@pytest.fixture
def targets() -> Iterator[dict[str, str]]:
    with tcp_listener() as tcp, delayed_http() as http, connect_black_hole() as hole, blackhole() as silent:
        yield {
            "tcp": f"127.0.0.1:{tcp}",
            "name": f"localhost:{tcp}",
            "http": f"{http}/health",
            "down": f"{http}/down",
            "refused": f"127.0.0.1:{refused_port()}",
            "hole": f"127.0.0.1:{hole}",
            "silent": f"{silent}/health",
        }


def _probing(otlp: Callable[..., OTLPReceiver], targets: dict[str, str], **options: Any) -> OTLPReceiver:
    urls = [target + "?token=s3cret" if "://" in target else target for target in targets.values()]
    options.setdefault("probe_interval", 0.2)
    return otlp(probe_targets=urls, probe_timeout=TIMEOUT, gpu=False, host=False, collect_interval=0.05, **options)


def _points(receiver: OTLPReceiver, name: str, target: str, **attributes: Any) -> list[MetricPoint]:
    want = {"llmobs.probe.target": target, **attributes}
    return [
        p for p in receiver.latest(name, want) if p.attributes.keys() == want.keys() | {"server.address", "server.port"}
    ]


def _probed(receiver: OTLPReceiver, targets: dict[str, str]) -> bool:
    assert llmobs.force_flush(timeout=5)
    return all(_points(receiver, UP, target) for target in targets.values())


class Timing(NamedTuple):
    probes: int
    mean: float
    max: float


def _duration(receiver: OTLPReceiver, target: str, phase: str, error: str | None = None) -> Timing:
    extra = {"error.type": error} if error else {}
    (point,) = _points(receiver, DURATION, target, **{"llmobs.probe.phase": phase}, **extra)
    assert point.count and point.sum is not None and point.max is not None
    return Timing(point.count, point.sum / point.count, point.max)


def _up(receiver: OTLPReceiver, target: str) -> float:
    (point,) = _points(receiver, UP, target)
    return float(point.value or 0)


def test_each_target_is_recorded_as_up_down_timeout_or_refused(
    otlp: Callable[..., OTLPReceiver], targets: dict[str, str]
) -> None:
    receiver = _probing(otlp, targets)
    receiver.wait_for(lambda r: _probed(r, targets), timeout=10)
    assert llmobs.force_flush(timeout=5)
    assert [_up(receiver, targets[k]) for k in ("tcp", "name", "http")] == [1.0, 1.0, 1.0]
    assert [_up(receiver, targets[k]) for k in ("down", "refused", "hole", "silent")] == [0.0] * 4
    assert _duration(receiver, targets["tcp"], "connect").max < TIMEOUT
    assert not _points(receiver, DURATION, targets["tcp"], **{"llmobs.probe.phase": "dns"})  # an IP: no lookup
    assert _duration(receiver, targets["name"], "dns").max < TIMEOUT
    http = _duration(receiver, targets["http"], "http")
    assert DELAY * 0.9 <= http.mean <= DELAY + 1.0
    assert _duration(receiver, targets["down"], "http", "503").probes
    assert _duration(receiver, targets["refused"], "connect", "refused").max < TIMEOUT
    for key, phase in (("hole", "connect"), ("silent", "http")):
        timeout = _duration(receiver, targets[key], phase, "timeout")
        assert TIMEOUT * 0.9 <= timeout.mean <= TIMEOUT + 1.0


def test_targets_are_exported_without_their_query_strings(
    otlp: Callable[..., OTLPReceiver], targets: dict[str, str]
) -> None:
    receiver = _probing(otlp, targets)
    receiver.wait_for(lambda r: _probed(r, targets), timeout=10)
    exported = [p for p in receiver.metrics() if p.name.startswith("llmobs.network.probe")]
    assert exported and not any("s3cret" in str(p.attributes) or "?" in str(p.attributes) for p in exported)


def test_a_hung_target_delays_no_other(otlp: Callable[..., OTLPReceiver], targets: dict[str, str]) -> None:
    """Probed one after the other, each round would take over a second (two 0.5 s timeouts, a 0.2 s
    answer); on their own threads, the listener is probed every 0.2 s interval while the black holes,
    busy timing out, skip intervals."""
    started = time.monotonic()
    receiver = _probing(otlp, targets)
    receiver.wait_for(lambda r: _probed(r, targets), timeout=10)

    def counts() -> tuple[int, int]:
        assert llmobs.force_flush(timeout=5)
        fast = _duration(receiver, targets["tcp"], "connect").probes
        return fast, _duration(receiver, targets["hole"], "connect", "timeout").probes

    # Polled, not a fixed 2 s: a loaded machine runs the probe threads late, so the counts are held
    # against the time they had, as timed here.
    deadline = time.monotonic() + 30
    while (found := counts())[0] < 10:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    fast, hung = found
    # A round probed one after the other takes at least two timeouts and the HTTP answer: that many
    # listener probes in this time only on their own threads. A black-hole probe lasts its timeout.
    one_after_the_other = elapsed / (2 * TIMEOUT + DELAY) + 1
    assert fast > one_after_the_other and hung <= elapsed / TIMEOUT and fast > hung, (fast, hung, elapsed)


def test_probe_threads_stop_at_shutdown(otlp: Callable[..., OTLPReceiver], targets: dict[str, str]) -> None:
    receiver = _probing(otlp, targets)
    receiver.wait_for(lambda r: _probed(r, targets), timeout=10)
    started = time.monotonic()
    assert llmobs.shutdown(timeout=2)
    assert time.monotonic() - started < 2
    deadline = time.monotonic() + 3 * TIMEOUT + 1  # a probe in progress ends within its bounded phases
    while any(t.name.startswith("llmobs-probe-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("llmobs-probe-")]


def test_the_summary_shows_each_target(otlp: Callable[..., OTLPReceiver], targets: dict[str, str]) -> None:
    receiver = _probing(otlp, targets)
    receiver.wait_for(lambda r: _probed(r, targets), timeout=10)
    registry, resource = state.registry, state.resource
    assert isinstance(registry, Registry) and resource is not None
    stream = io.StringIO()
    SummaryExporter(stream).export(Points(resource, True).build(registry.collect()))  # as the summary gets them
    text = stream.getvalue()
    assert "\n  probe " in text and f"{targets['down']} down (503)" in text
    assert f"{targets['refused']} down (refused)" in text and f"{targets['hole']} down (timeout)" in text
    assert re.search(re.escape(targets["http"]) + r" up connect [0-9.]+ms http [0-9]+ms", text), text
    assert max(len(line) for line in text.splitlines()) <= 120


@pytest.mark.parametrize(
    "raw",
    ["db", "db:0", "db:99999", "db:port", "ftp://db/x", "http://:80/x", "http://db:0/x", "my host:80", "a:1,,b"],
)
def test_malformed_targets_fail_at_init_with_the_fix(raw: str) -> None:
    if raw == "a:1,,b":
        with pytest.raises(ConfigError, match=r"LLMOBS_PROBE_TARGETS: probe target 'b' must be host:port"):
            load(env={"LLMOBS_PROBE_TARGETS": raw})
        return
    with pytest.raises(ConfigError, match="LLMOBS_PROBE_TARGETS: probe target.*(e.g.|;)"):
        load(env={"LLMOBS_PROBE_TARGETS": raw})
    with pytest.raises(ConfigError, match=r"init\(probe_targets=...\)"):
        load(probe_targets=[raw], env={})


def test_target_errors_never_show_a_password_or_query() -> None:
    with pytest.raises(ConfigError) as caught:
        load(env={"LLMOBS_PROBE_TARGETS": "ftp://user:s3cret@db/x?token=s3cret"})
    assert "s3cret" not in str(caught.value) and "//***@" in str(caught.value)


def test_probe_options_resolve_and_are_checked() -> None:
    settings = load(
        env={"LLMOBS_PROBE_TARGETS": "db:5432, https://u:p@vec:8443/health?k=v", "LLMOBS_PROBE_INTERVAL": "5000"}
    )
    assert [t.name for t in settings.probe_targets] == ["db:5432", "https://vec:8443/health"]
    assert settings.probe_targets[1].path == "/health?k=v" and settings.probe_interval == 5.0
    assert settings.probe_timeout == 2.0 and load(probe_targets=[], env={}).probe_targets == ()
    with pytest.raises(ConfigError, match="LLMOBS_PROBE_TIMEOUT must be a number of milliseconds"):
        load(env={"LLMOBS_PROBE_TIMEOUT": "0"})
    with pytest.raises(ConfigError, match=r"init\(probe_targets=...\) must be a list of strings"):
        load(probe_targets="db:5432", env={})


def test_only_the_host_lock_holder_probes() -> None:
    """Per host: a process that does not hold the lock probes nothing, and one that loses it
    withdraws its ``up`` gauges."""
    registry = Registry()
    with tcp_listener() as port:
        prober = Prober(parse_targets(f"127.0.0.1:{port}"), registry, 0.05, TIMEOUT)
        try:
            prober.request(False)
            time.sleep(0.2)
            assert not registry.collect()
            prober.request(True)
            deadline = time.monotonic() + 5
            while not _gauges(registry) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _gauges(registry) == [1.0]
            prober.request(False)
            assert _gauges(registry) == []
        finally:
            prober.stop()


def _gauges(registry: Registry) -> list[float]:
    return [
        value.value
        for instrument, series in registry.collect()
        if instrument.name == UP
        for _, value in series
        if isinstance(value, ValueSnapshot)
    ]
