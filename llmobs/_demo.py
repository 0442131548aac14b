"""run a simulated streaming model under load and show the summary

``llmobs demo``: a simulated streaming model under concurrent load, instrumented with llmobs, so that a
new user sees the summary (and their backend sees the data) within seconds; it leaves a local history
behind, and its last line says how to turn that into a report."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import AsyncIterator

import llmobs

from . import _lifecycle


class Overloaded(Exception):
    """The simulated model's occasional failure."""


@llmobs.monitor_inference(model="demo-llm-8b", operation="chat")
async def generate(prompt: str) -> AsyncIterator[str]:
    """Streams 20-80 tokens: first after 30-250 ms (prefill), then one every 5-25 ms (decode)."""
    llmobs.current_inference().record_tokens(input=len(prompt.split()))
    await asyncio.sleep(random.uniform(0.03, 0.25))
    if random.random() < 0.03:
        raise Overloaded("queue full")
    per_token = random.uniform(0.005, 0.025)
    for i in range(random.randint(20, 80)):
        if i:
            await asyncio.sleep(per_token)
        yield f"tok{i} "


@llmobs.monitor_inference(model="demo-embed", operation="embeddings")
async def embed(texts: list[str]) -> list[list[float]]:
    await asyncio.sleep(random.uniform(0.005, 0.02))
    llmobs.current_inference().record_tokens(input=sum(len(t.split()) for t in texts))
    return [[random.random()] * 4 for _ in texts]


async def _client(until: float) -> None:
    while time.monotonic() < until:
        try:
            async for i, _ in _enumerate(generate("summarize this document for me please")):
                if i == 10 and random.random() < 0.05:
                    break  # the user closed the tab: recorded as client_closed, not as an error
            if random.random() < 0.2:  # some users leave feedback: one evaluation name
                llmobs.record_evaluation("user_feedback", label=random.choice(["thumbs_up"] * 4 + ["thumbs_down"]))
        except Overloaded:
            await asyncio.sleep(0.05)


def _evaluate(items: int = 50) -> None:
    """A small test-set run, as a nightly evaluation job would do: accuracy and a score per item."""
    with llmobs.monitor_evaluation("demo-golden-set", model="demo-llm-8b", total=items) as run:
        for _ in range(items):
            score = random.betavariate(8, 2)
            run.add(correct=score > 0.6, score=score)


async def _enumerate(stream: AsyncIterator[str]) -> AsyncIterator[tuple[int, str]]:
    i = 0
    async for item in stream:
        yield i, item
        i += 1


async def _batch(until: float, docs: int) -> None:
    with llmobs.monitor_batch("demo-embeddings", total=docs) as batch:
        for start in range(0, docs, 16):
            if time.monotonic() >= until:
                break
            vectors = await embed([f"document {n}" for n in range(start, min(start + 16, docs))])
            batch.advance(len(vectors), tokens=2 * len(vectors))
            await asyncio.sleep(0.05)


async def _load(duration: float, concurrency: int) -> None:
    until = time.monotonic() + duration
    docs = int(duration / 0.07 * 16)  # about what the batch gets through in the time
    await asyncio.gather(_batch(until, docs), *(_client(until) for _ in range(concurrency)))


def run(duration: float = 15.0, concurrency: int = 8, interval: float = 5.0) -> None:
    """Run the demo; with OTEL_EXPORTER_OTLP_ENDPOINT set the same data also goes there."""
    llmobs.init(service_name="llmobs-demo", export_interval=interval, summary=True)
    print(
        f"llmobs demo: a simulated streaming model, {concurrency} concurrent clients for {duration:.0f} s; "
        f"a summary every {interval:.0f} s (set OTEL_EXPORTER_OTLP_ENDPOINT to send it to a backend too)",
        flush=True,
    )
    settings = _lifecycle.state.settings
    history = settings.history if settings is not None else None
    try:
        asyncio.run(_load(duration, concurrency))
        _evaluate()
    finally:
        llmobs.shutdown()
    if history is not None:
        from ._report import default_history

        where = "" if default_history() == history else f" --history {history}"
        print(f"llmobs demo: the history is in {history}; turn it into a report with: "
              f"llmobs report --since 1h{where} --out report.html", flush=True)  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load (default 15)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between summaries (default 5)")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.duration <= 0 or args.concurrency < 1 or args.interval <= 0:
        parser.error("--duration and --interval must be positive and --concurrency at least 1")
    run(args.duration, args.concurrency, args.interval)
    return 0
