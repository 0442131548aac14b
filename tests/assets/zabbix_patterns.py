"""Zabbix's Prometheus preprocessing, as its 6.0 manual specifies it, for the template test: the pattern
``name{label="v", label=~"re", ...}`` with outputs ``value``, ``label`` and ``function`` (sum, min, max,
avg, count), and ``PROMETHEUS_TO_JSON``; a real Zabbix server needs a database and its PHP front end,
more than CI can start."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

CHROMIUM = shutil.which("chromium")
_MATCHER = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def samples(exposition: str) -> list[Sample]:
    return [
        Sample(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(exposition) for s in f.samples
    ]


def select(pattern: str, found: list[Sample]) -> list[Sample]:
    """The samples ``pattern`` matches (regular expressions anchored, as Zabbix's are)."""
    name, _, rest = pattern.partition("{")
    matchers = _MATCHER.findall(rest.rstrip("}")) if rest else []
    out = []
    for sample in found:
        labels = {"__name__": sample.name, **sample.labels}
        if name and sample.name != name:
            continue
        if all(_holds(labels.get(key, ""), op, value) for key, op, value in matchers):
            out.append(sample)
    return out


def _holds(actual: str, op: str, value: str) -> bool:
    if op in ("=", "!="):
        return (actual == value) == (op == "=")
    return bool(re.fullmatch(value, actual)) == (op == "=~")


def apply(step: dict[str, object], found: list[Sample]) -> str:
    """One PROMETHEUS_PATTERN or PROMETHEUS_TO_JSON step; ValueError where Zabbix reports an error."""
    params = step["parameters"]
    assert isinstance(params, list)
    matched = select(params[0], found)
    if step["type"] == "PROMETHEUS_TO_JSON":
        return json.dumps([{"name": s.name, "value": str(s.value), "labels": s.labels} for s in matched])
    if not matched:
        raise ValueError(f"no data matches {params[0]}")
    if params[1] == "value":
        if len(matched) != 1:
            raise ValueError(f"{params[0]} matches {len(matched)} lines")
        return str(matched[0].value)
    values = [s.value for s in matched]
    functions: dict[str, Callable[[list[float]], float]] = {
        "sum": sum, "min": min, "max": max, "count": len, "avg": lambda v: sum(v) / len(v)
    }  # fmt: skip
    return str(functions[params[2]](values))


def javascript(steps: list[tuple[str, str]]) -> list[str]:
    """JavaScript steps (script, input), run as Zabbix runs them: each script a function body with
    ``value`` in scope. In headless Chromium (CI installs it; Zabbix's Duktape is ES5, as written)."""
    assert CHROMIUM is not None
    calls = ", ".join(f"String((function (value) {{\n{script}\n}})({json.dumps(value)}))" for script, value in steps)
    with tempfile.TemporaryDirectory() as directory:
        page = Path(directory) / "steps.html"
        page.write_text(f"<body><script>document.body.textContent = JSON.stringify([{calls}]);</script></body>")
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={directory}/profile",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=90, check=True,
        )  # fmt: skip
    body = re.search(r"<body>(.*)</body>", done.stdout, re.DOTALL)
    assert body, done.stdout + done.stderr
    results: list[str] = json.loads(html.unescape(body[1]))
    return results
