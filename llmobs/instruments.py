"""Every metric llmobs emits: name, instrument kind, unit and buckets, in one place.

Names follow the OpenTelemetry semantic conventions where they exist (GenAI, HTTP, hardware) and
live under ``llmobs.`` where they do not, so they never collide with a future convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """How a metric aggregates; maps onto the OpenTelemetry data point types."""

    HISTOGRAM = "histogram"
    COUNTER = "counter"
    UP_DOWN_COUNTER = "up_down_counter"
    GAUGE = "gauge"


@dataclass(frozen=True)
class Instrument:
    """A metric's identity. Hashable, so series are keyed by it."""

    name: str
    kind: Kind
    unit: str
    description: str
    buckets: tuple[float, ...] = ()


def _doubling(first: float, count: int) -> tuple[float, ...]:
    return tuple(round(first * 2**i, 6) for i in range(count))


# GenAI semantic conventions advise these boundaries.
DURATION_BUCKETS = _doubling(0.01, 14)  # 0.01 … 81.92 s
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1 … 67,108,864
THROUGHPUT_BUCKETS = (1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1000.0, 2500.0, 5000.0)
BATCH_DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)

REQUEST_DURATION = Instrument(
    "gen_ai.server.request.duration", Kind.HISTOGRAM, "s",
    "Time from the start of an inference call to its end.", DURATION_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Instrument(
    "gen_ai.server.time_to_first_token", Kind.HISTOGRAM, "s",
    "Time from the start of a streaming call to its first output chunk.", TTFT_BUCKETS,
)
TIME_PER_OUTPUT_TOKEN = Instrument(
    "gen_ai.server.time_per_output_token", Kind.HISTOGRAM, "s",
    "Time per output token after the first: (duration - TTFT) / (output tokens - 1).", TPOT_BUCKETS,
)
TOKEN_USAGE = Instrument(
    "llmobs.inference.token.usage", Kind.HISTOGRAM, "{token}",
    "Tokens per call, by gen_ai.token.type; the rate of its sum is tokens per second.", TOKEN_BUCKETS,
)
OUTPUT_THROUGHPUT = Instrument(
    "llmobs.inference.output_throughput", Kind.HISTOGRAM, "{token}/s",
    "Output tokens per second of one call.", THROUGHPUT_BUCKETS,
)
ACTIVE_REQUESTS = Instrument(
    "llmobs.inference.active_requests", Kind.UP_DOWN_COUNTER, "{request}",
    "Inference calls in flight.",
)

BATCH_DURATION = Instrument(
    "llmobs.batch.duration", Kind.HISTOGRAM, "s", "Wall time of one batch job run.", BATCH_DURATION_BUCKETS,
)
BATCH_ITEMS = Instrument(
    "llmobs.batch.items", Kind.COUNTER, "{item}", "Items a batch job processed, by llmobs.batch.outcome.",
)
BATCH_TOKENS = Instrument("llmobs.batch.tokens", Kind.COUNTER, "{token}", "Tokens a batch job processed.")
BATCH_PROGRESS = Instrument(
    "llmobs.batch.progress", Kind.GAUGE, "1", "Fraction of a batch job's known total that is done.",
)
BATCH_ACTIVE = Instrument("llmobs.batch.active", Kind.UP_DOWN_COUNTER, "{batch}", "Batch jobs running now.")

# Attribute keys.
MODEL = "gen_ai.request.model"
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
END_REASON = "llmobs.end_reason"
BATCH_NAME = "llmobs.batch.name"
BATCH_OUTCOME = "llmobs.batch.outcome"
OVERFLOW = "otel.metric.overflow"
