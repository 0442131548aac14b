"""The embedded default's summary: percentiles from buckets, what each line shows, and that
names cannot forge lines."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.export import HistogramDataPoint, Metric, NumberDataPoint
from opentelemetry.sdk.metrics.export import Sum as SumData

from llmobs import semconv as names
from llmobs._points import DELTA
from llmobs._summary import percentile, printable, render


def test_percentile_interpolates_inside_the_bucket() -> None:
    bounds = (0.01, 0.02, 0.04)
    assert percentile(bounds, [0, 10, 0, 0], 0.5) == 0.015
    assert percentile(bounds, [10, 0, 0, 10], 0.99) == 0.04  # the open bucket reports its lower edge
    assert percentile(bounds, [0, 0, 0, 0], 0.5) is None


def histogram(name: str, attributes: Mapping[str, str], counts: list[int], total: float) -> Metric:
    instrument = next(i for i in vars(names).values() if isinstance(i, names.Instrument) and i.name == name)
    point = HistogramDataPoint(attributes, 0, 1, sum(counts), total, counts, instrument.buckets, 0.0, total)
    return Metric(name, "", instrument.unit, HistogramData([point], DELTA))


def test_render_rows_for_models_and_batches() -> None:
    model = {names.MODEL: "llama"}
    buckets = [0] * (len(names.DURATION_BUCKETS) + 1)
    ok, failed = list(buckets), list(buckets)
    ok[1], failed[3] = 9, 1  # 9 calls in (0.01, 0.02], one failure in (0.04, 0.08]
    metrics = [
        histogram(names.REQUEST_DURATION.name, model, ok, 0.135),
        histogram(names.REQUEST_DURATION.name, {**model, names.ERROR_TYPE: "ValueError"}, failed, 0.05),
        histogram(names.TOKEN_USAGE.name, {**model, names.TOKEN_TYPE: "output"}, [0, 0, 10] + [0] * 12, 400),
        Metric(
            names.BATCH_ITEMS.name,
            "",
            "{item}",
            SumData(
                [NumberDataPoint({names.BATCH_NAME: "nightly", names.BATCH_OUTCOME: "success"}, 0, 1, 50)], DELTA, True
            ),
        ),
    ]
    lines = render(iter(metrics), elapsed=10.0)
    row = next(line for line in lines if line.strip().startswith("llama")).split()
    assert row[1:3] == ["10", "10.0%"]
    assert row[3] == "16ms"  # p50 inside (10 ms, 20 ms]
    assert row[-1] == "40.0"  # 400 output tokens in 10 s
    assert "  batch nightly: 50 items (5.0/s), 0 failed" in lines


def test_render_is_silent_when_nothing_happened() -> None:
    assert render(iter([]), elapsed=10.0) == []


def items(batch: str, count: int) -> Metric:
    point = NumberDataPoint({names.BATCH_NAME: batch, names.BATCH_OUTCOME: "success"}, 0, 1, count)
    return Metric(names.BATCH_ITEMS.name, "", "{item}", SumData([point], DELTA, True))


def test_names_cannot_forge_lines_or_colours() -> None:
    model = "llama\n  admin 1 0.0%\x1b[2K\x1b[31m\u2028\x9b"
    batch = "nightly\r\n  batch backup: 9 items\x1b]0;title\x07\x00"
    counts = [0, 1] + [0] * len(names.DURATION_BUCKETS)
    lines = render(
        iter([histogram(names.REQUEST_DURATION.name, {names.MODEL: model}, counts, 0.01), items(batch, 5)]), 1.0
    )
    output = "\n".join(lines)
    assert len(output.splitlines()) == len(lines) == 4  # header, columns, one model row, one batch line
    assert all(character.isprintable() for line in lines for character in line)
    assert lines[2].split()[0] == "llama\\n" and lines[2].split()[1] == "admin"  # visible, on its own row
    assert lines[3] == "  batch nightly\\r\\n  batch backup: 9 items\\x1b]0;title\\x07\\x00: 5 items (5.0/s), 0 failed"


def test_printable_leaves_ordinary_names_alone() -> None:
    assert printable("llama-3-8b / résumé 模型") == "llama-3-8b / résumé 模型"
    assert printable("a\tb\u202ec") == "a\\tb\\u202ec"  # tabs and bidi overrides are escaped too
