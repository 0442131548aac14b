"""``llmobs audit``: pip-audit over this environment. These machines cannot reach its vulnerability
service, and CI may: a proxy that refuses every connection makes the service unreachable either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.util import find_spec

import pytest

from llmobs import _audit
from llmobs import semconv as names
from tests.middleware.telemetry import final
from tests.otlp_receiver import OTLPReceiver, free_port


def _run_audit(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    return subprocess.run(
        [sys.executable, "-m", "llmobs._cli", "audit", *argv],
        capture_output=True,
        text=True,
        timeout=90,
        env={**clean, **env},
        check=False,
    )


INSTALLED = find_spec("pip_audit") is not None


@pytest.mark.skipif(not INSTALLED, reason="pip-audit is not installed (the core suite)")
def test_an_unreachable_vulnerability_service_is_one_line_and_a_failure() -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with OTLPReceiver() as receiver:
        done = _run_audit(
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


@pytest.mark.skipif(INSTALLED, reason="pip-audit is installed (the core suite runs without it)")
def test_without_pip_audit_it_says_how_to_install_it() -> None:
    done = _run_audit()
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["llmobs audit: pip-audit is not installed here (pip install pip-audit)"]


def test_the_command_has_its_help_and_a_bounded_timeout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmobs._cli", "audit", "--help"], capture_output=True, text=True, check=True
    )
    assert "known vulnerabilities with pip-audit" in " ".join(done.stdout.split()) and "--timeout" in done.stdout


def test_findings_become_records_and_the_gauge(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``main`` reports once pip-audit answered: parsed from pip-audit's JSON format."""
    output = json.dumps(
        {
            "dependencies": [
                {"name": "jinja2", "version": "2.10", "vulns": [{"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"]}]},
                {"name": "requests", "version": "2.0.0", "vulns": [{"id": "GHSA-x84v", "fix_versions": []}]},
                {"name": "llmobs", "version": "0.1.0", "vulns": []},
                {"name": "local-only", "skip_reason": "Dependency not found on PyPI"},
            ],
            "fixes": [],
        }
    )
    dependencies = _audit._dependencies(output)
    assert dependencies is not None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    _audit._report([(d, v) for d in dependencies if "vulns" in d for v in d["vulns"]])
    records = sorted(receiver.logs(), key=lambda r: r.attributes[names.PACKAGE_NAME])
    assert [(r.event_name, r.severity_text, r.body) for r in records] == [
        (names.VULNERABILITY_EVENT, "WARN", "PYSEC-2019-217 in jinja2 2.10 (2.10.1)"),
        (names.VULNERABILITY_EVENT, "WARN", "GHSA-x84v in requests 2.0.0 (no fixed version)"),
    ]
    assert records[0].attributes[names.VULNERABILITY_ID] == "PYSEC-2019-217"
    (gauge,) = final(receiver, names.VULNERABILITIES.name)
    assert (gauge.value, gauge.attributes) == (2, {names.VULNERABILITY_SEVERITY: "unknown"})
