"""``llmobs report`` from a real history: the text and the HTML carry the values recorded (calls, error
rate, tokens/s, TTFT, evaluations, batches), charts are inline PNGs, and an empty or missing history or
an unreachable Prometheus is one line and exit status 1. Headless Chromium renders the page."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest

import llmobs
from tests.otlp_receiver import free_port

ROOT = Path(__file__).parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.needs_chromium
needs_matplotlib = pytest.mark.skipif(find_spec("matplotlib") is None, reason="the report extra is not installed")


@llmobs.monitor_inference(model="llama", operation="chat")
def stream(fail: bool) -> Iterator[str]:
    time.sleep(0.03)
    if fail:
        raise TimeoutError
    yield from ("a", "b", "c", "d")


FIRST_TOKENS: list[float] = []
"""How long each successful call of the history took to its first chunk, as timed by the fixture."""


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A history of 20 streamed calls (2 failing), an evaluation run and a batch job."""
    path = tmp_path_factory.mktemp("report") / "history.db"
    llmobs.init(service_name="report-test", history=str(path), summary=False, gpu=False, host=False,
                export_interval=3600)  # fmt: skip
    FIRST_TOKENS.clear()
    for i in range(20):
        with contextlib.suppress(TimeoutError):
            started = time.perf_counter()
            chunks = stream(i % 10 == 0)
            first = next(chunks)
            FIRST_TOKENS.append(time.perf_counter() - started)
            assert [first, *chunks] == ["a", "b", "c", "d"]
        if i == 9:
            llmobs.force_flush(timeout=5)
    with llmobs.monitor_evaluation("golden", model="llama") as run:
        for i in range(8):
            run.add(correct=i < 6, score=1.0 if i < 6 else 0.25)
    with llmobs.monitor_batch("nightly", total=10) as batch:
        batch.advance(9, failed=1)
    llmobs.shutdown()
    return path


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmobs._cli", "report", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_without_matplotlib_the_text_comes_and_the_html_names_the_extra(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as if the report extra were not installed
        "from llmobs._cli import main\n"
        f"sys.exit(main(['report', '--history', {str(history)!r}, '--since', '1h', '--out', {str(out)!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and not out.exists()
    row = next(line.split() for line in result.stdout.splitlines() if line.strip().startswith("llama"))
    assert row[1:3] == ["20", "10.0%"]
    assert result.stderr == "llmobs report: the HTML's charts need matplotlib: pip install 'llmobs[report]'\n"


@needs_matplotlib
def test_the_report_carries_the_recorded_values(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = report("--history", str(history), "--since", "1h", "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    row = next(line.split() for line in lines if line.strip().startswith("llama"))
    assert row[1:3] == ["20", "10.0%"]
    # TTFT p50 of calls that sleep 30 ms: at least that, at most the slowest first chunk as timed by the
    # fixture (a loaded machine oversleeps; shown in whole ms).
    assert len(FIRST_TOKENS) == 18
    assert 30 <= float(row[6].removesuffix("ms")) <= max(FIRST_TOKENS) * 1000 + 0.5, (row, FIRST_TOKENS)
    with sqlite3.connect(history) as db:
        first, last = db.execute("SELECT min(start), max(end) FROM intervals").fetchone()
    assert float(row[-1]) == pytest.approx(18 * 4 / (last - first), rel=0.01)  # output tokens/s over the data
    assert "    top errors: TimeoutError 2" in lines
    assert "  evaluation golden (llama): 8 scores, mean 0.812; accuracy 75.0% latest, 75.0% first" in lines
    assert "  batch nightly: 9 items done, 1 failed, 100% done" in lines
    assert lines[-1] == f"wrote {out}"
    html = out.read_text()
    assert html.count('src="data:image/png;base64,') >= 5 and "<script" not in html
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_thresholds_are_checked_like_the_alert_rules(history: Path, tmp_path: Path) -> None:
    result = report("--history", str(history), "--set", "error_ratio=2", "--out", str(tmp_path / "r.html"))
    assert result.returncode == 2 and "threshold error_ratio='2': must be between 0 and 1" in result.stderr


@pytest.mark.parametrize(
    ("since", "problem"), [("yesterday", "is not a duration"), ("0h", "must be a positive duration")]
)
def test_a_bad_window_is_a_usage_error(history: Path, since: str, problem: str) -> None:
    result = report("--history", str(history), f"--since={since}")
    assert result.returncode == 2 and problem in result.stderr


def test_a_missing_empty_or_unreachable_source_is_one_line(tmp_path: Path) -> None:
    missing = report("--history", str(tmp_path / "none.db"), "--out", str(tmp_path / "r.html"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no history at" in missing.stderr
    empty = tmp_path / "empty.db"
    llmobs.init(history=str(empty), summary=False, gpu=False, host=False, export_interval=3600)
    llmobs.shutdown()  # a history file with nothing in it
    result = report("--history", str(empty), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    unreachable = report("--prometheus", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path / "r.html"))
    assert unreachable.returncode == 1 and unreachable.stderr.count("\n") == 1
    assert "cannot reach Prometheus at" in unreachable.stderr
    assert not (tmp_path / "r.html").exists()


@needs_chromium
@needs_matplotlib
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_headless_chromium_renders_the_report(history: Path, tmp_path: Path) -> None:
    out, png = tmp_path / "report.html", tmp_path / "report.png"
    assert report("--history", str(history), "--out", str(out)).returncode == 0
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1000,1600", out.as_uri()],
            capture_output=True, timeout=90, check=True,
        )  # fmt: skip
    assert colours(png) > 50  # text, lines and the threshold: not a blank page


def colours(png: Path) -> int:
    """Distinct colours in a PNG, read with matplotlib's image reader."""
    from matplotlib.image import imread

    pixels = imread(png)
    return len({tuple(p) for p in pixels.reshape(-1, pixels.shape[-1])[::7]})  # every 7th pixel is plenty


@needs_matplotlib
def test_the_report_is_never_written_through_a_link(history: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    (tmp_path / "report.html").symlink_to(target)
    result = report("--history", str(history), "--out", str(tmp_path / "report.html"))
    assert result.returncode == 1 and "cannot write" in result.stderr and target.read_text() == "precious"


@needs_matplotlib
def test_a_threshold_set_on_the_command_line_is_what_the_chart_draws(history: Path) -> None:
    from llmobs._assets.thresholds import DEFAULTS, apply
    from llmobs._report.data import load_history
    from llmobs._report.plots import charts

    report = load_history(str(history), time.time() - 3600, time.time() + 1)
    default, changed = dict(charts(report, DEFAULTS)), dict(charts(report, apply(["error_ratio=0.2"])))
    assert default["llama: error rate"] != changed["llama: error rate"]  # the dashed line moved
    assert default["llama: latency"] == changed["llama: latency"]  # drawing is deterministic otherwise
