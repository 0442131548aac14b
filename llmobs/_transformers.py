"""Zero-code instrumentation of Hugging Face transformers: ``GenerationMixin.generate`` and
``Pipeline.__call__`` become monitored calls, named after the model's config, with token counts read
from the input and output tensors (never the text) and, through a streamer, real TTFT and TPOT.

A ``generate`` inside a pipeline call (or inside another ``generate``) adds its tokens to the
outer call instead of making a second one. Imported only by ``instrument_transformers``.
"""

from __future__ import annotations

import functools
import inspect
import types
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ._failsafe import guarded, warn_once
from ._handle import Inference, current_inference
from ._inference import monitor_inference
from .semconv import OTHER

try:
    import torch
    from transformers.generation.streamers import BaseStreamer
    from transformers.generation.utils import GenerationMixin
    from transformers.pipelines.base import Pipeline
except ImportError as missing:
    raise ImportError(
        f"llmobs.instrument_transformers needs {missing.name}: pip install 'llmobs[transformers]'"
    ) from missing

MAX_MODELS = 64
"""Distinct (model, operation) pairs with their own monitored call; further ones share ``_OTHER``."""
OPERATIONS = {"text-generation": "text_completion", "text2text-generation": "text_completion"}
OPERATIONS |= {"feature-extraction": "embeddings", "image-text-to-text": "generate_content"}
"""Pipeline tasks named as ``gen_ai.operation.name`` values; other tasks keep their task name."""

_originals: dict[tuple[type, str], Callable[..., Any]] = {}
_runners: dict[tuple[str, str], Callable[..., Any]] = {}
_named: weakref.WeakKeyDictionary[Any, dict[str, Callable[..., Any]]] = weakref.WeakKeyDictionary()


class _Tally:
    """The tokens and finish reasons of one monitored call, summed over the ``generate`` calls in it."""

    __slots__ = ("handle", "input", "output", "reasons", "generating")

    def __init__(self, handle: Inference) -> None:
        self.handle = handle
        self.input = self.output = 0
        self.reasons: list[str] = []
        self.generating = False  # a generate inside it (an assistant model's drafts) is not counted

    def report(self) -> None:
        if self.input or self.output:
            self.handle.record_tokens(self.input, self.output)
        if self.reasons:
            self.handle.set_finish_reasons(*self.reasons)


_active: ContextVar[_Tally | None] = ContextVar("llmobs_transformers", default=None)


class _Streamer(BaseStreamer):
    """The user's streamer, seen by ``generate``: its first ``put`` is the prompt, its second the first
    new token, which marks the call's TTFT. Everything else goes to the user's streamer unchanged."""

    def __init__(self, inner: Any, tally: _Tally) -> None:
        self._inner = inner
        self._tally = tally
        self._puts = 0

    def put(self, value: Any) -> Any:
        self._puts += 1
        if self._puts == 2:
            self._tally.handle.mark_first_token()
        return self._inner.put(value)

    def end(self) -> Any:
        return self._inner.end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def instrument_transformers() -> None:
    """Monitor every ``generate()`` and pipeline call of transformers models in this process.
    Safe to call twice; ``uninstrument_transformers()`` puts the originals back."""
    _patch(GenerationMixin, "generate", _patched_generate, "streamer")
    _patch(Pipeline, "__call__", _patched_pipeline, "inputs")


def uninstrument_transformers() -> None:
    """Restore the original ``generate`` and ``Pipeline.__call__``."""
    for (owner, name), original in _originals.items():
        setattr(owner, name, original)
    _originals.clear()


def _patch(owner: type, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]], expected: str) -> None:
    """Replace ``owner.name`` with ``make(original)``, unless its signature lost ``expected`` (another
    transformers version): then one warning, and the original stays."""
    if (owner, name) in _originals:
        return
    original = owner.__dict__.get(name)
    if not inspect.isfunction(original) or expected not in inspect.signature(original).parameters:
        warn_once(
            f"transformers:{name}",
            "llmobs: %s.%s has no parameter %r in this transformers version; it is left uninstrumented",
            owner.__name__,
            name,
            expected,
        )
        return
    _originals[(owner, name)] = original
    setattr(owner, name, functools.wraps(original)(make(original)))


Body = Callable[[_Tally, Any, tuple[Any, ...], dict[str, Any]], Any]
"""What a monitored call runs: (tally, model or pipeline, args, kwargs) -> the original's result."""


def _patched_generate(original: Callable[..., Any]) -> Callable[..., Any]:
    body: Body = functools.partial(_generate, original)

    def generate(self: Any, *args: Any, **kwargs: Any) -> Any:
        outer = _active.get()
        if outer is not None:  # a pipeline's generate: its tokens go to the pipeline's call
            return body(outer, self, args, kwargs)
        run = _runner(self, "text_completion")
        return original(self, *args, **kwargs) if run is None else run(body, self, args, kwargs)

    return generate


def _patched_pipeline(original: Callable[..., Any]) -> Callable[..., Any]:
    def body(_: _Tally, pipeline: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return original(pipeline, *args, **kwargs)

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        run = None if _active.get() is not None else _pipeline_runner(self, args, kwargs)
        return original(self, *args, **kwargs) if run is None else run(body, self, args, kwargs)

    return call


@guarded(where="transformers pipeline")
def _pipeline_runner(pipeline: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[..., Any] | None:
    """The monitored call of a pipeline's model and task. None for a generator or dataset input: the
    pipeline then returns an iterator that works later, as the caller reads it (docs/transformers.md)."""
    inputs = args[0] if args else kwargs.get("inputs")
    if isinstance(inputs, (types.GeneratorType, torch.utils.data.Dataset)):
        return None
    task = str(getattr(pipeline, "task", "") or "pipeline")
    return _runner(getattr(pipeline, "model", None), OPERATIONS.get(task, task))


@guarded(where="transformers model name")
def _runner(model: Any, operation: str) -> Callable[..., Any] | None:
    """The monitored call of ``model`` and ``operation``, remembered per model object: reading the name
    from transformers' config costs microseconds a call."""
    try:
        known = _named.get(model)
    except TypeError:  # not weakly referenceable: named each call
        return _named_runner(model, operation)
    if known is None:
        known = _named[model] = {}
    run = known.get(operation)
    if run is None:
        run = known[operation] = _named_runner(model, operation)
    return run


def _named_runner(model: Any, operation: str) -> Callable[..., Any]:
    """The monitored call for the model's config name (else its class name) and ``operation``."""
    config = getattr(model, "config", None)
    name = getattr(config, "name_or_path", "") or getattr(config, "_name_or_path", "") or type(model).__name__
    key = (str(name), operation)
    run = _runners.get(key)
    if run is None:
        if len(_runners) >= MAX_MODELS:
            key = (OTHER, operation)
        run = _runners.get(key) or _runners.setdefault(key, _monitored(*key))
    return run


def _monitored(model: str, operation: str) -> Callable[..., Any]:
    def run(body: Body, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        tally = _Tally(current_inference())
        token = _active.set(tally)
        try:
            result = body(tally, target, args, kwargs)
        finally:
            _active.reset(token)
        tally.report()
        return result

    return monitor_inference(model=model, operation=operation)(run)


def _generate(
    original: Callable[..., Any], tally: _Tally, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run the original ``generate`` with the user's streamer seen through ``_Streamer``, then add
    the tokens it read and wrote to ``tally``."""
    if tally.generating:
        return original(model, *args, **kwargs)
    streamer = kwargs.get("streamer")
    if streamer is not None:
        kwargs = {**kwargs, "streamer": _Streamer(streamer, tally)}
    tally.generating = True
    try:
        output = original(model, *args, **kwargs)
    finally:
        tally.generating = False
    _count(tally, model, args, kwargs, output)
    return output


@guarded(where="transformers token count")
def _count(tally: _Tally, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
    """Input tokens from ``input_ids`` (or the attention mask, which leaves out padding); output tokens
    per returned sequence up to its first end-of-sequence token, which also makes its finish reason."""
    inputs = kwargs.get("input_ids", kwargs.get("inputs", args[0] if args else None))
    sequences = getattr(output, "sequences", output)
    if not isinstance(inputs, torch.Tensor) or not isinstance(sequences, torch.Tensor) or sequences.dim() != 2:
        return
    mask = kwargs.get("attention_mask")
    tally.input += int(mask.sum()) if isinstance(mask, torch.Tensor) else inputs.numel()
    config = getattr(model, "config", None)
    prompt = 1 if getattr(config, "is_encoder_decoder", False) else inputs.shape[-1]  # a decoder start token
    eos = _eos_ids(model, kwargs)
    if not eos:
        tally.output += sequences.shape[0] * max(0, sequences.shape[1] - prompt)
        return
    new = sequences[:, prompt:]
    is_eos = torch.isin(new, torch.tensor(eos, device=new.device))
    after_eos = (is_eos.cumsum(-1) - is_eos.long()) > 0
    tally.output += int((~after_eos).sum())
    tally.reasons += ["stop" if stopped else "length" for stopped in is_eos.any(-1).tolist()]


def _eos_ids(model: Any, kwargs: dict[str, Any]) -> list[int]:
    config = kwargs.get("generation_config") or getattr(model, "generation_config", None)
    eos = kwargs.get("eos_token_id", getattr(config, "eos_token_id", None))
    if eos is None:
        return []
    return [int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos])]
