"""llmobs.testing: users assert on their own telemetry without a backend."""

from __future__ import annotations

import pytest

import llmobs
from llmobs.testing import capture


@llmobs.monitor_inference(model="m", operation="chat")
def predict(x: int) -> int:
    llmobs.current_inference().record_tokens(input=x, output=2 * x)
    return x


def test_capture_sees_metrics_and_spans() -> None:
    predict(1)  # before the block: not part of what it captures
    with capture() as telemetry:
        predict(3)
        predict(4)
        durations = telemetry.points("gen_ai.server.request.duration", {"gen_ai.request.model": "m"})
        outputs = telemetry.points("llmobs.inference.token.usage", {"gen_ai.token.type": "output"})
        spans = telemetry.spans()
    assert [p.count for p in durations] == [2]
    assert [p.sum for p in outputs] == [14]
    assert [s.name for s in spans] == ["chat m", "chat m"]
    assert spans[0].attributes is not None and spans[0].attributes["gen_ai.usage.input_tokens"] == 3


def test_capture_without_traces_and_nesting_refused() -> None:
    with capture(traces=False) as telemetry:
        predict(1)
        assert telemetry.spans() == []
        with pytest.raises(RuntimeError, match="already initialized"), capture():
            pass
