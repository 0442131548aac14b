"""The app the asset tests scrape (uvicorn, one process; never imported by the tests themselves, as it
starts llmobs and its driver at import): from start-up, a driver thread makes RATE
monitored streaming calls a second on a fixed schedule, every EVERY-th failing, each with known
tokens, runs a batch job advancing BATCH_RATE items a second, and spreads calls over more models than
the series cap allows (an overflow series); HTTP routes answer 200, 401, 403 and 429."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI, Response

import llmobs
from tests.assets.workload import BATCH_RATE, EVERY, INPUT, OUTPUT, RATE, TENANTS

llmobs.init(service_name="assets-test")


@llmobs.monitor_inference(model="m", operation="chat")
def generate(i: int) -> Iterator[str]:
    call = llmobs.current_inference()
    call.record_tokens(input=INPUT)
    call.mark_started()
    if i % EVERY == 0:
        raise ValueError("every fifth call fails")
    for _ in range(OUTPUT):
        yield "tok"
    call.set_finish_reasons("stop")


@llmobs.monitor_inference(operation="embeddings")
def embed(tenant: int) -> None:
    llmobs.current_inference().set_model(f"tenant-{tenant}")


def drive() -> None:
    start = time.monotonic()
    with llmobs.monitor_batch("nightly", total=10**6) as batch:
        for i in range(1, 10**9):
            time.sleep(max(0.0, start + i / RATE - time.monotonic()))
            with contextlib.suppress(ValueError):
                list(generate(i))
            if i % (RATE // BATCH_RATE) == 0:
                batch.advance(1, failed=1 if i % (RATE * 5) == 0 else 0)
            if i > RATE:
                embed(i % TENANTS)


threading.Thread(target=drive, daemon=True).start()

app = FastAPI()
llmobs.instrument_fastapi(app)
app.get("/health")(lambda: "ok")


@app.get("/status/{code}")
def status(code: int) -> Response:
    return Response(content=f"status {code}", status_code=code)
