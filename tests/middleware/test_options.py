"""Middleware options fail at set-up with the fix in the message; importing llmobs stays light."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from llmobs import ConfigError
from llmobs._middleware.options import DEFAULT_SKIP_PATHS, options


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"skip_paths": "/health"}, "skip_paths must be a list"),
        ({"skip_paths": ["health"]}, "starting with '/'"),
        ({"request_headers": [""]}, "request_headers must be a list of non-empty strings"),
        ({"response_headers": [b"x-id"]}, "response_headers must be a list"),
        ({"skip_path": ["/ready"]}, "unknown middleware option 'skip_path'"),
    ],
)
def test_bad_options_fail_at_set_up(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        options(given)  # type: ignore[arg-type]


def test_defaults_and_normalised_headers() -> None:
    assert options({}).skip_paths == DEFAULT_SKIP_PATHS >= {"/health", "/metrics"}
    assert options({"skip_paths": []}).skip_paths == frozenset()
    assert options({"request_headers": ["X-Request-Id", " x-request-id", "Traceparent"]}).request_headers == (
        "x-request-id",
        "traceparent",
    )


def run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    return result.stdout + result.stderr


def test_importing_llmobs_imports_no_web_framework() -> None:
    out = run("""
        import sys, llmobs, llmobs._middleware
        heavy = ("fastapi", "starlette", "flask", "werkzeug", "opentelemetry.instrumentation.asgi",
                 "opentelemetry.instrumentation.wsgi")
        print(sorted(m for m in heavy if m in sys.modules))
    """)
    assert out.strip() == "[]"


def test_a_missing_extra_says_what_to_install() -> None:
    out = run("""
        import sys
        sys.modules["opentelemetry.instrumentation.asgi"] = None  # as if the extra were not installed
        from llmobs._middleware import ASGIMiddleware
    """)
    assert "pip install 'llmobs[fastapi]'" in out
