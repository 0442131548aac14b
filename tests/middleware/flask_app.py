"""The Flask app that gunicorn serves (pre-fork, --preload) in test_wsgi.py; llmobs starts in the
master, so each worker's telemetry exists only because llmobs re-armed itself after the fork."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import NoReturn

from flask import Flask, Response, abort, request

import llmobs
from llmobs._middleware import instrument_flask
from tests.middleware import scenario

llmobs.init(service_name="wsgi-test")
app = Flask(__name__)
instrument_flask(app)


@llmobs.monitor_inference(model="test-model", operation="chat")
def generate(prompt: str) -> str:
    time.sleep(0.01)
    return prompt[::-1]


@llmobs.monitor_inference(model="test-model", operation="stream")
def tokens(count: int) -> Iterator[str]:
    for i in range(count):
        time.sleep(scenario.TOKEN_SECONDS)
        yield f"token{i} "


@app.get("/items/<int:item_id>")
def item(item_id: int) -> dict[str, object]:
    return {"id": item_id, "pid": os.getpid()}


@app.get("/slow")
def slow() -> str:
    time.sleep(scenario.SLOW_SECONDS)
    return "done"


@app.get("/boom")
def boom() -> NoReturn:
    raise RuntimeError("boom")


@app.get("/admin")
def admin() -> NoReturn:
    abort(401 if "Authorization" not in request.headers else 403)


@app.get("/limited")
def limited() -> NoReturn:
    abort(429)


@app.get("/stream")
def stream() -> Response:
    return Response(tokens(scenario.STREAM_TOKENS), mimetype="text/event-stream")


@app.get("/stream/long")
def long_stream() -> Response:
    return Response(tokens(scenario.LONG_STREAM_TOKENS), mimetype="text/event-stream")


@app.post("/generate")
def generate_route() -> dict[str, str]:
    return {"text": generate(request.get_json()["prompt"])}


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/metrics")
def metrics() -> str:
    return "# nothing here\n"
