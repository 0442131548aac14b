"""instrument_transformers on a real, tiny, randomly initialised GPT-2 built from a config (no download):
generate with and without a streamer, and a text-generation pipeline. Token counts are checked against
the output tensors, TTFT and TPOT against the streamer's own clock."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("transformers")

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, pipeline
from transformers.generation.streamers import BaseStreamer
from transformers.generation.utils import GenerationMixin
from transformers.pipelines.base import Pipeline

import llmobs
from llmobs import _transformers
from llmobs.testing import Telemetry, capture

MODEL = {"gen_ai.request.model": "GPT2LMHeadModel", "gen_ai.operation.name": "text_completion"}
ORIGINALS = (GenerationMixin.__dict__["generate"], Pipeline.__dict__["__call__"])


@pytest.fixture(scope="module")
def tiny() -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """One model and word-level tokenizer for the module: building them takes a while, calling them ms."""
    torch.manual_seed(0)
    vocab = {word: i for i, word in enumerate(["<eos>", "<unk>", *(f"w{i}" for i in range(98))])}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=words, eos_token="<eos>", unk_token="<unk>", pad_token="<eos>"
    )
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = GPT2LMHeadModel(config)
    model.train(False)  # inference mode: no dropout
    return model, tokenizer


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    with capture() as captured:
        llmobs.instrument_transformers()
        try:
            yield captured
        finally:
            llmobs.uninstrument_transformers()


class Clock(BaseStreamer):
    """A streamer that notes when generate handed it each batch of tokens."""

    def __init__(self) -> None:
        self.puts: list[tuple[float, int]] = []
        self.ended = 0.0

    def put(self, value: torch.Tensor) -> None:
        self.puts.append((time.perf_counter(), value.numel()))

    def end(self) -> None:
        self.ended = time.perf_counter()


def only(telemetry: Telemetry, name: str, **extra: Any) -> Any:
    (point,) = telemetry.points(name, {**MODEL, **extra})
    return point


def test_generate_counts_tokens_from_the_tensors(tiny: Any, telemetry: Telemetry) -> None:
    model, tokenizer = tiny
    bare = _transformers._originals[(GenerationMixin, "generate")]
    batch = tokenizer(["w1 w2 w3 w4", "w5 w6"], return_tensors="pt", padding=True)
    reference = bare(model, **batch, max_new_tokens=12, do_sample=False)
    stop_at = int(reference[0, 4 + 2])  # the third new token of the first row: make it end that row
    output = model.generate(**batch, max_new_tokens=12, do_sample=False, eos_token_id=stop_at, pad_token_id=0)
    new_rows = output[:, batch["input_ids"].shape[1] :].tolist()
    expected_output = sum(row.index(stop_at) + 1 if stop_at in row else len(row) for row in new_rows)
    reasons = ["stop" if stop_at in row else "length" for row in new_rows]
    assert only(telemetry, "llmobs.inference.token.usage", **{"gen_ai.token.type": "input"}).sum == 6  # no padding
    assert only(telemetry, "llmobs.inference.token.usage", **{"gen_ai.token.type": "output"}).sum == expected_output
    assert reasons[0] == "stop" and expected_output < 2 * 12
    finished = {
        p.attributes["gen_ai.response.finish_reasons"]: p.value for p in telemetry.points("llmobs.inference.finished")
    }
    assert finished == {reason: 1 for reason in reasons}
    assert only(telemetry, "gen_ai.server.request.duration").count == 1
    (span,) = telemetry.spans()
    assert span.name == "text_completion GPT2LMHeadModel" and span.attributes is not None
    assert span.attributes["gen_ai.usage.output_tokens"] == expected_output


def test_streaming_generate_times_ttft_and_tpot_by_the_streamer(tiny: Any, telemetry: Telemetry) -> None:
    model, tokenizer = tiny
    clock = Clock()
    prompt = tokenizer("w1 w2 w3", return_tensors="pt")
    started = time.perf_counter()
    output = model.generate(**prompt, max_new_tokens=20, min_new_tokens=20, do_sample=False, streamer=clock)
    returned = time.perf_counter()
    assert output.shape[1] - 3 == 20 and [n for _, n in clock.puts] == [3] + [1] * 20 and clock.ended > 0
    prompt_put, first = clock.puts[0][0], clock.puts[1][0]  # the first put is the prompt
    # Bracketed by what the streamer saw, not a fixed tolerance (a loaded machine can pause anywhere):
    # llmobs marks the first token after the prompt's put and just before the first token's put, and
    # the call ends after the streamer's end and before generate returned here.
    ttft = only(telemetry, "gen_ai.server.time_to_first_token")
    assert ttft.count == 1 and prompt_put - started <= ttft.sum <= first - started
    tpot = only(telemetry, "gen_ai.server.time_per_output_token")
    assert tpot.count == 1 and (clock.ended - first) / 19 <= tpot.sum <= (returned - prompt_put) / 19
    assert only(telemetry, "llmobs.inference.token.usage", **{"gen_ai.token.type": "output"}).sum == 20


def test_a_pipeline_call_is_one_call_with_its_generates_tokens(tiny: Any, telemetry: Telemetry) -> None:
    model, tokenizer = tiny
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    clock = Clock()
    texts = generator(["w1 w2", "w3 w4 w5"], max_new_tokens=5, min_new_tokens=5, do_sample=False, streamer=clock)
    assert len(texts) == 2
    assert only(telemetry, "gen_ai.server.request.duration").count == 1  # not one more per generate inside
    assert only(telemetry, "llmobs.inference.token.usage", **{"gen_ai.token.type": "input"}).sum == 5
    assert only(telemetry, "llmobs.inference.token.usage", **{"gen_ai.token.type": "output"}).sum == 10
    assert only(telemetry, "gen_ai.server.time_to_first_token").count == 1
    assert [span.name for span in telemetry.spans()] == ["text_completion GPT2LMHeadModel"]


def test_patching_keeps_signatures_and_unpatching_restores_the_originals(tiny: Any) -> None:
    model, _ = tiny
    llmobs.instrument_transformers()
    llmobs.instrument_transformers()  # twice changes nothing
    try:
        assert inspect.signature(GenerationMixin.generate) == inspect.signature(ORIGINALS[0])
        assert GenerationMixin.generate.__wrapped__ is ORIGINALS[0]
        assert inspect.signature(model.generate) == inspect.signature(ORIGINALS[0].__get__(model))
    finally:
        llmobs.uninstrument_transformers()
    assert (GenerationMixin.__dict__["generate"], Pipeline.__dict__["__call__"]) == ORIGINALS


def test_errors_pass_through_unchanged(tiny: Any, telemetry: Telemetry) -> None:
    model, tokenizer = tiny
    failure = RuntimeError("the streamer broke")

    class Broken(Clock):
        def put(self, value: torch.Tensor) -> None:
            super().put(value)
            if len(self.puts) == 3:
                raise failure

    with pytest.raises(RuntimeError) as raised:
        model.generate(**tokenizer("w1", return_tensors="pt"), max_new_tokens=5, streamer=Broken())
    assert raised.value is failure
    assert only(telemetry, "gen_ai.server.request.duration", **{"error.type": "RuntimeError"}).count == 1


def test_a_changed_signature_is_left_alone_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    class OtherVersion:
        def generate(self, input_ids: Any) -> Any:
            return input_ids

    original = OtherVersion.__dict__["generate"]
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        _transformers._patch(OtherVersion, "generate", _transformers._patched_generate, "streamer")
        _transformers._patch(OtherVersion, "missing", _transformers._patched_generate, "streamer")
    assert OtherVersion.__dict__["generate"] is original and OtherVersion().generate(3) == 3
    assert len(caplog.records) == 2 and "left uninstrumented" in caplog.records[0].getMessage()
    assert (OtherVersion, "generate") not in _transformers._originals


def test_a_pipeline_that_does_not_generate_and_a_lazy_one(tiny: Any, telemetry: Telemetry) -> None:
    model, tokenizer = tiny
    features = pipeline("feature-extraction", model=model.transformer, tokenizer=tokenizer)
    vectors = features("w1 w2 w3")
    assert len(vectors[0]) == 3  # one vector per input token
    (duration,) = telemetry.points("gen_ai.server.request.duration", {"gen_ai.operation.name": "embeddings"})
    assert duration.count == 1 and duration.attributes["gen_ai.request.model"] == "GPT2Model"
    assert telemetry.points("llmobs.inference.token.usage") == []
    lazy = features(text for text in ["w1", "w2 w3"])  # type: ignore[arg-type]  # works as it is read, later
    assert [len(vector[0]) for vector in lazy] == [1, 2]
    assert only_duration_count(telemetry) == 1


def only_duration_count(telemetry: Telemetry) -> int:
    return sum(p.count for p in telemetry.points("gen_ai.server.request.duration"))
