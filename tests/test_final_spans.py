"""The span pipeline's batching: exports of at most ``EXPORT_BATCH`` spans unless the user set the SDK's
``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``, and no span lost to the smaller batches."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import llmobs
from llmobs._final_spans import EXPORT_BATCH
from tests.otlp_receiver import OTLPReceiver

Otlp = Callable[..., OTLPReceiver]


@llmobs.monitor_inference(model="m", operation="chat")
def predict() -> None:
    pass


def _batches(receiver: OTLPReceiver, calls: int) -> list[int]:
    """Spans per trace export after ``calls`` calls and a flush."""
    for _ in range(calls):
        predict()
    assert llmobs.force_flush(timeout=10)
    receiver.wait_for(lambda r: len(r.spans()) >= calls)
    traces = [r for r in receiver.requests if r.signal == "traces"]
    return [sum(len(scope.spans) for res in r.message.resource_spans for scope in res.scope_spans) for r in traces]


def test_spans_are_exported_in_small_batches_and_none_is_lost(otlp: Otlp) -> None:
    batches = _batches(otlp(traces=True), 200)
    assert sum(batches) == 200
    assert max(batches) == EXPORT_BATCH == 64


def test_the_sdk_batch_size_variable_wins(monkeypatch: pytest.MonkeyPatch, otlp: Otlp) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "150")
    batches = _batches(otlp(traces=True), 200)
    assert sum(batches) == 200
    assert max(batches) == 150
