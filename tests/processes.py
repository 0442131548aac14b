"""Run Python in a fresh interpreter against a receiver: fork, exit, global providers and
multiprocessing start methods all need a process of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.otlp_receiver import OTLPReceiver


def run_python(code: str, receiver: OTLPReceiver, script: Path | None = None, **env: str) -> str:
    """Run ``code`` (written to ``script`` when given: spawned children import their main module
    from a file) with the receiver's endpoints in RECEIVER_GRPC/RECEIVER_HTTP; return its stdout."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    full_env.update(env, RECEIVER_GRPC=receiver.grpc_endpoint, RECEIVER_HTTP=receiver.http_endpoint)
    full_env["PYTHONPATH"] = str(Path(__file__).parents[1])
    source = textwrap.dedent(code)
    if script is not None:
        script.write_text(source)
    command = [sys.executable, str(script)] if script is not None else [sys.executable, "-c", source]
    result = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout
