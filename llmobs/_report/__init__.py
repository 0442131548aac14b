"""turn the local history (or a Prometheus server) into a report: HTML with charts, text on stdout

``llmobs report [--since 24h] [--history FILE | --prometheus URL] [--out report.html]``: per model calls,
error rate and top error types, latency, TTFT/TPOT and tokens/s over time, evaluations, batch jobs, HTTP
routes, GPU and host readings, and (from Prometheus) the alerts that fired; alert thresholds drawn on
the charts. An empty or missing source is one line on stderr and exit status 1."""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .._assets.thresholds import Thresholds, apply, describe, read_values
from .._config import ConfigError, default_history_path, parse_duration

if TYPE_CHECKING:
    from .data import Report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="24h", help="how far back: 90m, 24h, 7d (default 24h)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--history",
        metavar="FILE",
        help="the history file (default: $OTEL_SERVICE_NAME's, else the newest in the data directory)",
    )
    source.add_argument("--prometheus", metavar="URL", help="a Prometheus server's base URL, e.g. http://prom:9090")
    parser.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    keys = ", ".join(key for key, _, _ in describe())
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=f"a threshold: {keys}")
    parser.add_argument("--values", type=Path, metavar="FILE", help="a file of KEY=VALUE thresholds")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        since = parse_duration(args.since)
        thresholds = _thresholds(args)
    except (ValueError, ConfigError) as exc:
        parser.error(str(exc))
    from .data import SourceError

    end = time.time()
    try:
        report = _load(args, end - since, end)
    except SourceError as exc:
        print(f"llmobs report: {exc}", file=sys.stderr)
        return 1
    if report.empty:
        print(f"llmobs report: {report.source} holds nothing from the last {args.since}", file=sys.stderr)
        return 1
    return _write(report, thresholds, args.out)


def _thresholds(args: argparse.Namespace) -> Thresholds:
    settings = read_values(args.values) if args.values else []
    return apply([*settings, *args.set])


def _load(args: argparse.Namespace, start: float, end: float) -> Report:
    from .data import load_history

    if args.prometheus:
        from .prometheus import load_prometheus

        return load_prometheus(args.prometheus, start, end)
    return load_history(args.history or default_history(), start, end)


def default_history() -> str:
    """The history of $OTEL_SERVICE_NAME if it has one, else the newest in the user's data directory."""
    named = default_history_path(os.environ, os.environ.get("OTEL_SERVICE_NAME"))
    found = sorted(glob.glob(os.path.join(os.path.dirname(named), "*.db")), key=os.path.getmtime)
    return named if os.path.exists(named) or not found else found[-1]


def _write(report: Report, thresholds: Thresholds, out: str) -> int:
    from .html import page
    from .plots import charts
    from .text import lines

    summary = lines(report)
    try:
        document = page(summary, charts(report, thresholds))
    except ModuleNotFoundError as missing:  # the text still tells what happened; the HTML needs the charts
        package = (missing.name or "matplotlib").split(".")[0]
        print("\n".join(summary))
        print(f"llmobs report: the HTML's charts need {package}: pip install 'llmobs[report]'", file=sys.stderr)
        return 1
    try:
        _private_write(out, document)
    except OSError as exc:
        print(f"llmobs report: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary))
    print(f"wrote {out}")
    return 0


def _private_write(path: str, text: str) -> None:
    """Write ``path`` 0600, never through a symbolic link (the report shows the service's traffic)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)
        file.write(text)
