"""Series values stay valid OTLP values: an absurd value is dropped with one warning, the series keeps
its earlier data, and export goes on for every metric."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

import pytest

import llmobs
from llmobs import _lifecycle
from llmobs import semconv as names
from llmobs._aggregation import CHUNK, Registry
from llmobs._attributes import MAX_KEY_LENGTH, freeze
from llmobs._batch import _BatchSeries
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


class CountingLock:
    """A re-entrant lock that counts how often it is taken and how deep it is ever held."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.taken = self.depth = self.deepest = 0

    def __enter__(self) -> bool:
        self._lock.acquire()
        self.taken += 1
        self.depth += 1
        self.deepest = max(self.deepest, self.depth)
        return True

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        self._lock.release()


def test_collect_takes_the_lock_once_per_chunk_of_histograms_and_skips_those_without_a_value() -> None:
    registry = Registry(max_series=10 * CHUNK)
    lock = registry._lock = CountingLock()  # type: ignore[assignment]
    for index in range(2 * CHUNK + 1):
        registry.series(names.BATCH_DURATION, (("i", index),)).record(0.5)
    registry.series(names.BATCH_DURATION, (("i", "dropped"),)).record(float("nan"))
    registry.series(names.BATCH_TOKENS, ATTRS).record(3)
    lock.taken = 0
    collected = dict(registry.collect())
    assert (lock.taken, lock.deepest) == (1 + 3, 1)  # the listing, then 3 chunks, never nested
    histograms = collected[names.BATCH_DURATION]
    assert len(histograms) == 2 * CHUNK + 1  # the one whose only value was dropped is left out
    assert all(s.count == 1 and s.sum == 0.5 for _, s in histograms)  # type: ignore[union-attr]
    assert [s.value for _, s in collected[names.BATCH_TOKENS]] == [3]  # type: ignore[union-attr]
    assert registry.lock_held > 0


def test_each_snapshot_is_consistent_and_counts_exact_while_threads_record_during_collects() -> None:
    registry = Registry(max_series=1000)
    series = [registry.series(names.BATCH_DURATION, (("i", index),)) for index in range(3 * CHUNK)]
    stop = threading.Event()
    torn: list[object] = []

    def collect() -> None:
        while not stop.is_set():
            for _, points in registry.collect():
                torn.extend(s for _, s in points if s.sum != 0.25 * s.count)  # type: ignore[union-attr]

    def record() -> None:
        for _ in range(20):
            for each in series:
                each.record(0.25)

    collector = threading.Thread(target=collect)
    collector.start()
    recorders = [threading.Thread(target=record) for _ in range(4)]
    for thread in recorders:
        thread.start()
    for thread in recorders:
        thread.join()
    stop.set()
    collector.join()
    assert torn == []
    counts = [s.count for _, s in registry.collect()[0][1]]  # type: ignore[union-attr]
    assert counts == [80] * (3 * CHUNK)


def test_a_bundle_slot_is_filled_on_first_read_and_unknown_names_still_fail() -> None:
    registry = Registry()
    bundle = _BatchSeries(registry, ATTRS)
    assert registry.collect() == []
    bundle.tokens.record(2)
    assert bundle.tokens is bundle.tokens  # the slot now holds the series itself
    assert [(i.name, len(p)) for i, p in registry.collect()] == [(names.BATCH_TOKENS.name, 1)]
    with pytest.raises(AttributeError):
        bundle.missing  # noqa: B018 - the lookup is what is tested


def test_a_function_whose_calls_all_name_a_tenant_keeps_no_series_of_its_base_attributes(otlp: Any) -> None:
    otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def call(tenant: str) -> None:
        llmobs.current_inference().set_attribute("tenant", tenant)

    for tenant in ("a", "b", "a"):
        call(tenant)
    durations = dict(live().collect())[names.REQUEST_DURATION]
    assert sorted((dict(attrs)["tenant"], s.count) for attrs, s in durations) == [("a", 2), ("b", 1)]  # type: ignore[union-attr]


def test_the_first_successful_call_puts_the_duration_series_in_place(otlp: Any) -> None:
    otlp(traces=False)

    @llmobs.monitor_inference(model="m", operation="chat")
    def monitored() -> int:
        return 1

    for _ in range(3):
        monitored()
    durations = dict(live().collect())[names.REQUEST_DURATION]
    assert [(dict(attrs)[names.MODEL], s.count) for attrs, s in durations] == [("m", 3)]  # type: ignore[union-attr]


def test_collect_leaves_the_garbage_collector_as_it_found_it() -> None:
    registry = Registry()
    registry.series(names.BATCH_DURATION, ATTRS).record(1.0)
    assert gc.isenabled()
    assert len(registry.collect()) == 1 and gc.isenabled()
    gc.disable()
    try:
        assert len(registry.collect()) == 1 and not gc.isenabled()
    finally:
        gc.enable()
