"""Series values stay valid OTLP values: an absurd value is dropped with one warning, the series keeps
its earlier data, and export goes on for every metric."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import llmobs
from llmobs import _lifecycle
from llmobs import semconv as names
from llmobs._aggregation import Registry
from llmobs._attributes import MAX_KEY_LENGTH, freeze
from tests.helpers import exported, one

ATTRS = ((names.BATCH_NAME, "nightly"),)


def live() -> Registry:
    registry = _lifecycle.state.registry
    assert isinstance(registry, Registry)
    return registry


def test_a_sum_that_would_leave_int64_or_go_non_finite_is_dropped(otlp: Any, caplog: pytest.LogCaptureFixture) -> None:
    receiver = otlp(traces=False)
    tokens = live().series(names.BATCH_TOKENS, ATTRS)
    duration = live().series(names.BATCH_DURATION, ATTRS)
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        for value in (5, 2**63, 1e308, 1e308, float("nan"), 10**400):
            tokens.record(value)
        for value in (1.5, float("inf"), float("nan"), 10**400, 2.0**62, 2.0**62):
            duration.record(value)
    assert one(receiver, "llmobs.batch.tokens", dict(ATTRS)).value == 5
    histogram = one(receiver, "llmobs.batch.duration", dict(ATTRS))
    assert (histogram.count, histogram.sum, sum(histogram.bucket_counts)) == (2, 1.5 + 2.0**62, 2)
    assert (histogram.min, histogram.max) == (1.5, 2.0**62)
    dropped = [r.getMessage() for r in caplog.records if "was dropped" in r.getMessage()]
    assert len(dropped) == 2  # one per metric


def test_absurd_batch_counts_never_stop_export(otlp: Any) -> None:
    receiver = otlp(traces=False)
    with llmobs.monitor_batch("nightly") as batch:
        batch.advance(1, tokens=2**63)
        batch.advance(1, tokens=10**308)
        batch.advance(2, tokens=7)
    assert one(receiver, "llmobs.batch.tokens", dict(ATTRS)).value == 7
    assert one(receiver, "llmobs.batch.items", {**dict(ATTRS), names.BATCH_OUTCOME: "success"}).value == 2
    assert exported(receiver, "llmobs.batch.duration")


def test_a_bundle_creates_each_series_on_its_first_record(otlp: Any) -> None:
    receiver = otlp(traces=False)
    with llmobs.monitor_batch("nightly") as batch:
        batch.advance(3)
    assert llmobs.force_flush()
    exported_names = {p.name for p in receiver.metrics() if p.name.startswith("llmobs.batch")}
    assert exported_names == {"llmobs.batch.items", "llmobs.batch.duration", "llmobs.batch.active"}
    outcomes = [p.attributes[names.BATCH_OUTCOME] for p in exported(receiver, "llmobs.batch.items")]
    assert outcomes == ["success"]


def test_a_record_after_a_signal_in_another_thread_takes_the_lock() -> None:
    registry = Registry()
    series = registry.series(names.BATCH_DURATION, ATTRS)

    def interrupted() -> None:
        # What a signal handler's exception inside the critical section does: leave the ``with`` block.
        with pytest.raises(TimeoutError), registry._lock:
            raise TimeoutError

    interrupted()
    other = threading.Thread(target=series.record, args=(1.0,))
    other.start()
    other.join(5)
    assert not other.is_alive()
    assert registry.collect()[0][1][0][1].count == 1  # type: ignore[union-attr]


def test_attribute_keys_too_long_or_text_that_is_not_unicode_are_dropped_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        for _ in range(3):
            pairs = freeze({"k" * (MAX_KEY_LENGTH + 1): 1, "ok": "fine", "bad": "x\ud800y", "key\udc00": 2})
    assert pairs == (("ok", "fine"),)
    assert len(caplog.records) == 2
    assert all(len(r.getMessage()) < 200 for r in caplog.records)  # a huge key is not logged whole
