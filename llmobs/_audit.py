"""Audit the installed distributions for known vulnerabilities with pip-audit (findings as log records).

``llmobs audit`` runs pip-audit over this environment, bounded by ``--timeout``. Each finding becomes
one WARN record (``llmobs.vulnerability``) and the total the ``llmobs.vulnerabilities`` gauge, through
the OTEL_* configuration. Exit status: 0 none found, 1 found, 2 when pip-audit is missing or its
vulnerability service cannot be reached (said in one line: no result is not a clean result).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from typing import Any

UNREACHABLE = 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds the whole audit may take (120)")
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi", help="pip-audit's vulnerability service")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not 1 <= args.timeout <= 3600:
        parser.error("--timeout must be a number of seconds from 1 to 3600")
    if importlib.util.find_spec("pip_audit") is None:
        return _say("pip-audit is not installed here (pip install pip-audit)")
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off", "--local"]
    command += ["--vulnerability-service", args.service, "--timeout", str(max(1, min(15, int(args.timeout))))]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        return _say(f"pip-audit did not finish within {args.timeout:g}s; its vulnerability service may be unreachable")
    dependencies = _dependencies(done.stdout)
    if dependencies is None:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return _say(f"the vulnerability service ({args.service}) could not be reached: {reason}")
    audited = [d for d in dependencies if "skip_reason" not in d]
    if not audited:
        return _say(f"the vulnerability service ({args.service}) audited none of {len(dependencies)} distributions")
    findings = [(d, v) for d in audited for v in d.get("vulns", ())]
    _report(findings)
    skipped = len(dependencies) - len(audited)
    print(f"llmobs audit: {len(findings)} known vulnerabilities in {len(audited)} distributions ({skipped} skipped)")
    return 1 if findings else 0


def _say(problem: str) -> int:
    print(f"llmobs audit: {problem}", file=sys.stderr)
    return UNREACHABLE


def _dependencies(output: str) -> list[dict[str, Any]] | None:
    try:
        report = json.loads(output)
    except ValueError:
        return None
    found = report.get("dependencies") if isinstance(report, dict) else None
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else None


def _report(findings: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Each finding as a record and the count as the gauge, exported through the OTEL_* configuration."""
    from opentelemetry._logs import SeverityNumber

    import llmobs

    from . import _lifecycle, _logs
    from ._attributes import AttributeValue, freeze
    from .semconv import (
        PACKAGE_NAME,
        PACKAGE_VERSION,
        VULNERABILITIES,
        VULNERABILITY_EVENT,
        VULNERABILITY_ID,
        VULNERABILITY_SEVERITY,
    )

    llmobs.init(inventory=False, gpu=False, host=False, summary=False)
    severities: dict[str, int] = {}
    for dependency, vulnerability in findings:
        severity = str(vulnerability.get("severity") or "unknown").lower()  # pip-audit's JSON has none today
        severities[severity] = severities.get(severity, 0) + 1
        fixed = ", ".join(map(str, vulnerability.get("fix_versions") or ())) or "no fixed version"
        fields: dict[str, AttributeValue] = {
            PACKAGE_NAME: str(dependency.get("name")),
            PACKAGE_VERSION: str(dependency.get("version")),
            VULNERABILITY_ID: str(vulnerability.get("id")),
            VULNERABILITY_SEVERITY: severity,
        }
        body = f"{fields[VULNERABILITY_ID]} in {fields[PACKAGE_NAME]} {fields[PACKAGE_VERSION]} ({fixed})"
        _logs.emit(VULNERABILITY_EVENT, fields, SeverityNumber.WARN, body)
    for severity, count in severities.items():
        _lifecycle.state.registry.series(VULNERABILITIES, freeze({VULNERABILITY_SEVERITY: severity})).record(count)
    llmobs.shutdown()
