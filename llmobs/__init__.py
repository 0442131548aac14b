"""llmobs: OpenTelemetry metrics and spans for model-serving code, with negligible overhead."""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._batch import BatchRun, current_batch, monitor_batch
from ._config import ConfigError
from ._engine import record_batch_size, record_cache_lookup, set_kv_cache_usage, set_queue_length
from ._evaluation import EvaluationRun, monitor_evaluation, record_evaluation
from ._handle import Inference, current_inference
from ._inference import monitor_inference
from ._lifecycle import force_flush, init, shutdown
from ._profiling import profile
from ._version import __version__

if _TYPE_CHECKING:
    from ._clients import instrument_http_clients
    from ._log_handler import LogHandler, TraceContextFilter
    from ._middleware import ASGIMiddleware, WSGIMiddleware, instrument_fastapi, instrument_flask
    from ._prometheus.apps import prometheus_asgi_app, prometheus_wsgi_app
    from ._transformers import instrument_transformers, uninstrument_transformers

_LAZY = {
    "ASGIMiddleware": "_middleware",
    "WSGIMiddleware": "_middleware",
    "instrument_fastapi": "_middleware",
    "instrument_flask": "_middleware",
    "instrument_http_clients": "_clients",
    "prometheus_asgi_app": "_prometheus.apps",
    "prometheus_wsgi_app": "_prometheus.apps",
    "instrument_transformers": "_transformers",
    "uninstrument_transformers": "_transformers",
    "LogHandler": "_log_handler",
    "TraceContextFilter": "_log_handler",
}


def __getattr__(name: str) -> _Any:
    """The HTTP middleware, the HTTP client instrumentation and the Prometheus apps load on first use,
    so that importing llmobs imports no web framework, no HTTP client and no prometheus_client."""
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'llmobs' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{home}", __name__), name)


__all__ = [
    "ASGIMiddleware",
    "LogHandler",
    "TraceContextFilter",
    "BatchRun",
    "ConfigError",
    "EvaluationRun",
    "Inference",
    "__version__",
    "current_batch",
    "current_inference",
    "force_flush",
    "init",
    "monitor_batch",
    "monitor_evaluation",
    "monitor_inference",
    "instrument_fastapi",
    "instrument_flask",
    "instrument_http_clients",
    "instrument_transformers",
    "profile",
    "prometheus_asgi_app",
    "prometheus_wsgi_app",
    "record_evaluation",
    "record_batch_size",
    "record_cache_lookup",
    "set_kv_cache_usage",
    "set_queue_length",
    "shutdown",
    "uninstrument_transformers",
    "WSGIMiddleware",
]

for _name in (
    "BatchRun",
    "ConfigError",
    "EvaluationRun",
    "Inference",
    "current_batch",
    "current_inference",
    "force_flush",
    "init",
    "monitor_batch",
    "monitor_inference",
    "record_batch_size",
    "record_cache_lookup",
    "set_kv_cache_usage",
    "set_queue_length",
    "monitor_evaluation",
    "record_evaluation",
    "profile",
    "shutdown",
):
    globals()[_name].__module__ = __name__  # shown as llmobs.ConfigError, not llmobs._config.ConfigError
del _name
