"""llmobs: OpenTelemetry metrics and spans for model-serving code, with negligible overhead."""

from .batch import BatchRun, current_batch, monitor_batch
from .config import ConfigError
from .inference import monitor_inference
from .recorder import Inference, current_inference
from .runtime import force_flush, init, shutdown
from .version import __version__

__all__ = [
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
    "shutdown",
]
