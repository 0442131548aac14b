"""``llmobs audit``: pip-audit over this environment. These machines cannot reach its vulnerability
service, and CI may: a proxy that refuses every connection makes the service unreachable either way."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.otlp_receiver import OTLPReceiver, free_port


def _audit(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    return subprocess.run(
        [sys.executable, "-m", "llmobs._cli", "audit", *argv],
        capture_output=True,
        text=True,
        timeout=90,
        env={**clean, **env},
        check=False,
    )


def test_an_unreachable_vulnerability_service_is_one_line_and_a_failure() -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with OTLPReceiver() as receiver:
        done = _audit(
            "--timeout",
            "60",
            HTTPS_PROXY=refused,
            HTTP_PROXY=refused,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
        )
        assert receiver.logs() == []  # nothing reported as if the environment were clean
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "llmobs audit: the vulnerability service (pypi) could not be reached"
    )
    assert time.monotonic() - started < 60


def test_the_command_has_its_help_and_a_bounded_timeout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmobs._cli", "audit", "--help"], capture_output=True, text=True, check=True
    )
    assert "known vulnerabilities with pip-audit" in " ".join(done.stdout.split()) and "--timeout" in done.stdout
