"""Three gunicorn workers writing one history at once (every 0.2 s, and at exit): the report's sums over
their rows are exactly the calls the server answered."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

for _extra in ("httpx", "flask", "fastapi", "gunicorn"):  # the core CI leg runs without the server extras
    pytest.importorskip(_extra)

import httpx  # noqa: E402

from llmobs._report.data import load_history  # noqa: E402
from tests.middleware.servers import ROOT, serve  # noqa: E402

GUNICORN = ["gunicorn", "--workers", "3", "--bind", "127.0.0.1:{port}", "--graceful-timeout", "5",
            "--log-level", "warning", "tests.prometheus.apps:flask_app"]  # fmt: skip


def test_three_gunicorn_workers_write_one_history_with_exact_totals(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    env.update(
        PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path), OTEL_METRICS_EXPORTER="none", OTEL_TRACES_EXPORTER="none",
        OTEL_METRIC_EXPORT_INTERVAL="200", LLMOBS_HISTORY=str(history), LLMOBS_GPU="false", LLMOBS_HOST="false",
    )  # fmt: skip
    tokens = [1, 2, 3, 4] * 15 + [0] * 6  # 0 fails with ValueError (a 500)
    with serve(GUNICORN, env, tmp_path / "gunicorn.log") as server, httpx.Client(base_url=server.url) as client:
        pids = {client.get(f"/work/{n}").json()["pid"] if n else client.get("/work/0").status_code for n in tokens}
        time.sleep(0.5)  # a few intervals written while the workers run
    assert len(pids - {500}) >= 2, pids  # more than one worker answered
    report = load_history(str(history), time.time() - 600, time.time() + 1)
    model = report.models["m"]
    assert (model.calls, model.errors, model.input_tokens, model.output_tokens) == (66, 6, 150, 300)
    assert report.routes["GET /work/<int:tokens>"].requests == 66
    assert report.routes["GET /work/<int:tokens>"].server_errors == 6
    with sqlite3.connect(history) as db:
        writers = db.execute("SELECT count(DISTINCT instance), count(DISTINCT pid) FROM intervals").fetchone()
    assert writers[0] == writers[1] >= 2
