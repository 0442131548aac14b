"""Histogram boundaries chosen at init (an option or LLMOBS_BUCKETS), checked there, exported as chosen."""

from __future__ import annotations

import time
from typing import Any

import pytest

import llmobs
from llmobs import _config
from llmobs.semconv import DURATION_BUCKETS, EMBEDDING_DURATION_BUCKETS
from tests.helpers import BASE, one


@llmobs.monitor_inference(model="m", operation="chat")
def embed(seconds: float) -> None:
    time.sleep(seconds)


def test_the_embedding_set_tells_millisecond_calls_apart(otlp: Any) -> None:
    receiver = otlp(traces=False, buckets={"gen_ai.server.request.duration": "embedding"})
    for seconds in (0.002, 0.002, 0.006):
        embed(seconds)
    duration = one(receiver, "gen_ai.server.request.duration", BASE)
    assert tuple(duration.explicit_bounds) == EMBEDDING_DURATION_BUCKETS
    assert duration.count == 3 and duration.bucket_counts[0] == 0  # the conventions' first bucket holds all three


def test_boundaries_from_the_environment(otlp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "LLMOBS_BUCKETS",
        " gen_ai.server.request.duration = 0.002, 0.5,1 ; llmobs.inference.queue.duration=embedding;",
    )
    receiver = otlp(traces=False)
    embed(0.003)
    duration = one(receiver, "gen_ai.server.request.duration", BASE)
    assert list(duration.explicit_bounds) == [0.002, 0.5, 1.0] and list(duration.bucket_counts) == [0, 1, 0, 0]


def test_the_defaults_stay_those_of_the_conventions(otlp: Any) -> None:
    receiver = otlp(traces=False)
    embed(0)
    assert tuple(one(receiver, "gen_ai.server.request.duration", BASE).explicit_bounds) == DURATION_BUCKETS


@pytest.mark.parametrize(
    ("buckets", "message"),
    [
        ({"gen_ai.server.request.duraton": [1.0]}, "'gen_ai.server.request.duraton' is not a histogram llmobs records"),
        ({"llmobs.inference.active_requests": [1.0]}, "is not a histogram"),
        ({"gen_ai.server.request.duration": [0.1, 0.01]}, "must increase, each once, got [0.1, 0.01]: sort them"),
        ({"gen_ai.server.request.duration": [0.1, 0.1]}, "must increase, each once"),
        ({"gen_ai.server.request.duration": [0.0, 1.0]}, "finite and greater than 0"),
        ({"gen_ai.server.request.duration": [-1.0]}, "finite and greater than 0"),
        ({"gen_ai.server.request.duration": [1.0, float("inf")]}, "finite and greater than 0"),
        ({"gen_ai.server.request.duration": [float("nan")]}, "finite and greater than 0"),
        ({"gen_ai.server.request.duration": []}, "needs 1 to 64 boundaries, got 0"),
        ({"gen_ai.server.request.duration": [float(i) for i in range(1, 66)]}, "needs 1 to 64 boundaries, got 65"),
        ({"gen_ai.server.request.duration": ["1", "2"]}, "must be a list of numbers"),
        ({"gen_ai.server.request.duration": [True]}, "must be a list of numbers"),
        ({"gen_ai.server.request.duration": "fine"}, "name a preset (embedding)"),
        ([("gen_ai.server.request.duration", [1.0])], "must be a dict"),
    ],
)
def test_bad_boundaries_fail_at_init_with_the_fix(buckets: Any, message: str) -> None:
    with pytest.raises(llmobs.ConfigError, match="init\\(buckets=...\\)") as raised:
        llmobs.init(buckets=buckets, summary=False, gpu=False, host=False)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("gen_ai.server.request.duration", "must be NAME=b1,b2,... or NAME=embedding"),
        ("gen_ai.server.request.duration=0.1,fast", "must be numbers separated by commas"),
        ("gen_ai.server.request.duration=0.2,0.1", "sort them"),
        ("nope=0.1", "'nope' is not a histogram"),
    ],
)
def test_the_variable_is_checked_even_when_the_option_is_given(raw: str, message: str) -> None:
    with pytest.raises(llmobs.ConfigError, match="LLMOBS_BUCKETS") as raised:
        _config.load(buckets={"gen_ai.server.request.duration": "embedding"}, env={"LLMOBS_BUCKETS": raw})
    assert message in str(raised.value)


def test_the_option_wins_over_the_variable() -> None:
    env = {"LLMOBS_BUCKETS": "gen_ai.server.request.duration=1,2"}
    assert _config.load(env=env).buckets == {"gen_ai.server.request.duration": (1.0, 2.0)}
    chosen = _config.load(buckets={"llmobs.inference.queue.duration": [0.5]}, env=env).buckets
    assert chosen == {"llmobs.inference.queue.duration": (0.5,)}
