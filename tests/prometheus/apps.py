"""The apps the real servers run in test_servers.py: a Flask app (gunicorn, pre-fork) and a FastAPI app
(uvicorn --workers), both started with OTEL_METRICS_EXPORTER=prometheus from their environment."""

from __future__ import annotations

import os
import time

from fastapi import FastAPI
from flask import Flask

import llmobs
from llmobs import _lifecycle

llmobs.init(service_name=os.environ.get("TEST_SERVICE", "prometheus-test"))


@llmobs.monitor_inference(model="m", operation="chat")
def generate(tokens: int) -> str:
    """0.02 s of work; ``tokens`` input tokens and twice as many output tokens."""
    time.sleep(0.02)
    llmobs.current_inference().record_tokens(input=tokens, output=2 * tokens)
    if tokens == 0:
        raise ValueError("no tokens")
    return "ok"


def whoami() -> dict[str, object]:
    endpoint = _lifecycle.state.prometheus
    return {"pid": os.getpid(), "serving": endpoint is not None and endpoint.serving}


flask_app = Flask(__name__)
llmobs.instrument_flask(flask_app)
flask_app.get("/health")(lambda: "ok")
flask_app.get("/whoami")(whoami)


@flask_app.get("/work/<int:tokens>")
def flask_work(tokens: int) -> dict[str, object]:
    generate(tokens)
    return whoami()


fastapi_app = FastAPI()
llmobs.instrument_fastapi(fastapi_app)
fastapi_app.get("/health")(lambda: "ok")
fastapi_app.get("/whoami")(whoami)


@fastapi_app.get("/work/{tokens}")
def fastapi_work(tokens: int) -> dict[str, object]:
    generate(tokens)
    return whoami()
