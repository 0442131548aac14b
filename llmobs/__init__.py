"""llmobs: OpenTelemetry metrics and spans for model-serving code, with negligible overhead."""

from typing import TYPE_CHECKING, Any

from .batch import BatchRun, current_batch, monitor_batch
from .config import ConfigError
from .inference import monitor_inference
from .recorder import Inference, current_inference
from .runtime import force_flush, init, shutdown
from .version import __version__

if TYPE_CHECKING:
    from .middleware import ASGIMiddleware, WSGIMiddleware, instrument_fastapi, instrument_flask

_MIDDLEWARE = ("ASGIMiddleware", "WSGIMiddleware", "instrument_fastapi", "instrument_flask")


def __getattr__(name: str) -> Any:
    """The HTTP middleware loads on first use, so that importing llmobs imports no web framework."""
    if name in _MIDDLEWARE:
        from . import middleware

        return getattr(middleware, name)
    raise AttributeError(f"module 'llmobs' has no attribute {name!r}")


__all__ = [
    "ASGIMiddleware",
    "BatchRun",
    "ConfigError",
    "Inference",
    "__version__",
    "current_batch",
    "current_inference",
    "force_flush",
    "init",
    "monitor_batch",
    "monitor_inference",
    "instrument_fastapi",
    "instrument_flask",
    "shutdown",
    "WSGIMiddleware",
]
