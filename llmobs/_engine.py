"""Readings of a serving engine that belong to no single call: the size of each batch it runs, its
queue length and KV-cache use (gauges: last value wins, from any thread), and response-cache lookups.
These are per batch or per lookup, not per token: each looks its series up in the registry."""

from __future__ import annotations

from . import _lifecycle
from . import semconv as names
from ._aggregation import Series
from ._attributes import as_count, as_quantity, freeze
from ._failsafe import guarded, warn_once
from .semconv import Instrument


def _series(instrument: Instrument, **attributes: object) -> Series:
    return _lifecycle.state.registry.series(
        instrument, freeze({key: value for key, value in attributes.items() if value is not None})
    )


@guarded(where="record_batch_size")
def record_batch_size(size: int, *, model: str | None = None) -> None:
    """Count one batch of ``size`` requests the engine ran (``llmobs.engine.batch.size``)."""
    count = as_count(size, "batch size")
    if count is not None:
        _series(names.BATCH_SIZE, **{names.MODEL: model}).record(count)


@guarded(where="set_queue_length")
def set_queue_length(length: int, *, model: str | None = None) -> None:
    """The number of requests waiting in the engine's queue now (``llmobs.engine.queue.length``)."""
    count = as_count(length, "queue length")
    if count is not None:
        _series(names.QUEUE_LENGTH, **{names.MODEL: model}).record(count)


@guarded(where="set_kv_cache_usage")
def set_kv_cache_usage(fraction: float, *, model: str | None = None) -> None:
    """The fraction of the KV cache in use now, 0 to 1 (``llmobs.engine.kv_cache.utilization``);
    a value above 1 is capped, with one warning."""
    value = as_quantity(fraction, "KV-cache usage")
    if value is None:
        return
    if value > 1:
        warn_once("kv_cache:over", "llmobs: KV-cache usage %r is a fraction from 0 to 1; capped at 1", fraction)
        value = 1.0
    _series(names.KV_CACHE_UTILIZATION, **{names.MODEL: model}).record(value)


@guarded(where="record_cache_lookup")
def record_cache_lookup(hit: bool, *, saved: float | None = None, cache: str = "response") -> None:
    """Count one lookup in a response cache in front of a model (exact or semantic). On a hit,
    ``saved``: the model time it spared, in seconds (e.g. what computing the cached answer took)."""
    if not isinstance(hit, bool):
        warn_once("cache:hit", "llmobs: record_cache_lookup(hit=...) must be True or False; lookup dropped")
        return
    result = "hit" if hit else "miss"
    _series(names.CACHE_LOOKUPS, **{names.CACHE_NAME: cache, names.CACHE_RESULT: result}).record(1)
    seconds = None if saved is None or not hit else as_quantity(saved, "cache time saved")
    if seconds is not None:
        _series(names.CACHE_SAVED, **{names.CACHE_NAME: cache}).record(seconds)
