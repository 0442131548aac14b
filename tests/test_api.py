"""The public surface changes only on purpose, and importing llmobs stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import llmobs


def test_public_names() -> None:
    assert sorted(llmobs.__all__) == sorted(
        [
            "ASGIMiddleware",
            "BatchRun",
            "ConfigError",
            "EvaluationRun",
            "Inference",
            "LogHandler",
            "TraceContextFilter",
            "WSGIMiddleware",
            "__version__",
            "current_batch",
            "current_inference",
            "force_flush",
            "init",
            "instrument_fastapi",
            "instrument_flask",
            "instrument_http_clients",
            "instrument_transformers",
            "monitor_batch",
            "monitor_evaluation",
            "monitor_inference",
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
        ]
    )
    for name in llmobs.__all__:
        try:
            getattr(llmobs, name)
        except ImportError as missing:  # the core suite runs without the web frameworks and transformers
            assert "pip install 'llmobs[" in str(missing) and name in OPTIONAL


OPTIONAL = {
    "ASGIMiddleware",
    "WSGIMiddleware",
    "instrument_fastapi",
    "instrument_flask",
    "instrument_transformers",
    "uninstrument_transformers",
}


def test_import_loads_no_framework_nor_collector_dependency() -> None:
    heavy = [
        "fastapi",
        "starlette",
        "flask",
        "psutil",
        "pynvml",
        "grpc",
        "opentelemetry.sdk.resources",
        "prometheus_client",
        "httpx",
        "requests",
        "aiohttp",
        "wrapt",
        "opentelemetry.instrumentation",
        "torch",
        "transformers",
    ]
    code = f"import sys, llmobs; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_namespace_holds_only_the_public_names() -> None:
    """As httpx checks: nothing reaches ``llmobs.`` by accident (typing names, internal modules)."""
    code = "import llmobs, json; print(json.dumps(sorted(n for n in vars(llmobs) if not n.startswith('_'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lazy = OPTIONAL | {"prometheus_asgi_app", "prometheus_wsgi_app", "instrument_http_clients"}
    lazy |= {"LogHandler", "TraceContextFilter"}
    public_modules = {"semconv"}
    assert set(json.loads(result.stdout)) == set(llmobs.__all__) - lazy - {"__version__"} | public_modules
