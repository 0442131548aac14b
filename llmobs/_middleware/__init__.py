"""HTTP server middleware: ASGI (FastAPI, Starlette) and WSGI (Flask).

Loaded on first use, so that ``import llmobs`` imports neither the web frameworks nor the
OpenTelemetry ASGI/WSGI helpers (install ``llmobs[fastapi]`` or ``llmobs[flask]`` for those).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .asgi import ASGIMiddleware, instrument_fastapi
    from .wsgi import WSGIMiddleware, instrument_flask

__all__ = ["ASGIMiddleware", "WSGIMiddleware", "instrument_fastapi", "instrument_flask"]

_HOMES = {"ASGIMiddleware": "asgi", "instrument_fastapi": "asgi", "WSGIMiddleware": "wsgi", "instrument_flask": "wsgi"}
_EXTRAS = {"asgi": "fastapi", "wsgi": "flask"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{home}", __name__)
    except ImportError as exc:
        raise ImportError(f"llmobs.{name} needs {exc.name}: pip install 'llmobs[{_EXTRAS[home]}]'") from exc
    return getattr(module, name)
