"""Per-call overhead of ``llmobs.instrument_transformers()`` on ``generate`` of a tiny GPT-2 built from
a config (no download), against the same calls unpatched, in one process:
``python -m benchmarks.bench_transformers [--quick]``.

Bare (the original function, ``generate.__wrapped__``) and instrumented calls alternate one by one
(which of the two runs first alternates too),
with the GC off and torch on one thread, and the median of the paired differences is reported: a
generate call takes milliseconds and a shared machine moves that by more than the overhead, so only
pairs taken a few milliseconds apart compare. With and without a streamer; metrics only, as a server
with OTEL_TRACES_EXPORTER=none runs. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import sys
import time
import timeit
import types
from collections.abc import Callable
from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.generation.streamers import BaseStreamer
from transformers.generation.utils import GenerationMixin

import llmobs
from llmobs import _transformers

NEW_TOKENS = 8


class Sink(BaseStreamer):
    """A streamer that drops what it is given, as a server's would after sending it."""

    def put(self, value: torch.Tensor) -> None:
        pass

    def end(self) -> None:
        pass


def cases(generate: Callable[..., torch.Tensor]) -> dict[str, Callable[[], object]]:
    """Each case calls ``generate(model, ...)``: the original function or the patched one."""
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2, n_head=2, n_embd=32, vocab_size=100, bos_token_id=1, eos_token_id=None, pad_token_id=0
    )
    model = GPT2LMHeadModel(config)
    model.train(False)
    prompt = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    options = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False}
    return {
        "generate": lambda: generate(model, prompt, **options),
        "generate, streamer": lambda: generate(model, prompt, streamer=Sink(), **options),
    }


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def paired(bare: Callable[[], object], instrumented: Callable[[], object], bare_first: bool) -> tuple[float, float]:
    """(bare, instrumented) times of two calls in a row, in the order given (alternated, so that
    neither side always runs on what the other left in the caches)."""
    if bare_first:
        before = timed(bare)
        return before, timed(instrumented)
    after = timed(instrumented)
    return timed(bare), after


def wrapper_alone(number: int) -> None:
    """llmobs's own work per call: the patched generate around a stub that returns a prepared output
    (and streams 1 + 8 puts), against the stub alone; no model noise, all the bookkeeping."""
    prompt, output = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]]), torch.arange(16).reshape(1, 16)
    model = types.SimpleNamespace(config=types.SimpleNamespace(name_or_path="stub"))
    tokens = [prompt, *(output[:, i : i + 1] for i in range(8, 16))]

    def stub(_: object, __: torch.Tensor, streamer: Any = None, **___: object) -> torch.Tensor:
        if streamer is not None:
            for value in tokens:
                streamer.put(value)
            streamer.end()
        return output

    patched = _transformers._patched_generate(stub)
    for streaming in (False, True):
        times = {}
        for which, generate in (("bare", stub), ("patched", patched)):
            call = functools.partial(generate, model, prompt, max_new_tokens=NEW_TOKENS)
            call = functools.partial(call, streamer=Sink()) if streaming else call
            times[which] = min(timeit.repeat(call, number=number * 20, repeat=5)) / (number * 20)
        label = "wrapper alone" + (", streamer" if streaming else "")
        print(f"{label:<28} overhead {(times['patched'] - times['bare']) * 1e6:6.1f} µs/call")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 pairs of calls")
    args = parser.parse_args(argv)
    number = 100 if args.quick else 1000
    torch.set_num_threads(1)
    print(f"command: python -m benchmarks.bench_transformers{' --quick' if args.quick else ''}")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}; {number} pairs of calls")
    llmobs.init(service_name="bench", summary=False, traces=False, gpu=False, host=False, export_interval=3600)
    llmobs.instrument_transformers()
    patched = GenerationMixin.generate
    bare_cases, instrumented_cases = cases(patched.__wrapped__), cases(patched)
    gc.disable()
    with torch.inference_mode():
        for name in bare_cases:
            bare, instrumented = bare_cases[name], instrumented_cases[name]
            for _ in range(5):
                bare(), instrumented()  # warm up
            pairs = [paired(bare, instrumented, k % 2 == 0) for k in range(number)]
            median = statistics.median(before for before, _ in pairs)
            overhead = statistics.median(after - before for before, after in pairs)
            print(f"{name:<28} bare {median * 1e6:7.0f} µs  overhead {overhead * 1e6:6.1f} µs/call  ", end="")
            print(f"ratio {1 + overhead / median:.4f}")
        wrapper_alone(number)
    gc.enable()
    llmobs.uninstrument_transformers()
    llmobs.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
