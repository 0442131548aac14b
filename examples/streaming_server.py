"""A FastAPI server streaming tokens from one model slot, instrumented with llmobs: queue time, finish
reasons and user feedback besides latency, tokens, TTFT and TPOT.

pip install -e ".[fastapi]" fastapi uvicorn
OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 uvicorn examples.streaming_server:app
OTEL_METRICS_EXPORTER=prometheus uvicorn examples.streaming_server:app --workers 4  # curl localhost:9464/metrics
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

import llmobs

llmobs.init(service_name="streaming-server")
app = FastAPI()
llmobs.instrument_fastapi(app)
slot = asyncio.Semaphore(1)  # one request on the model at a time: the others queue
MAX_TOKENS = 16


@llmobs.monitor_inference(model="tiny-llm", operation="chat")
async def generate(prompt: str) -> AsyncIterator[str]:
    call = llmobs.current_inference()
    call.record_tokens(input=len(prompt.split()))
    async with slot:
        call.mark_started()  # the wait for the slot is queue time, the rest execution
        await asyncio.sleep(0.1)  # prefill
        words = prompt.split()
        for word in words[:MAX_TOKENS]:
            await asyncio.sleep(0.02)  # decode
            yield word + " "
        call.set_finish_reasons("length" if len(words) > MAX_TOKENS else "stop")


@app.get("/generate")
async def generate_endpoint(prompt: str) -> StreamingResponse:
    return StreamingResponse(generate(prompt), media_type="text/plain")


@app.post("/feedback")
async def feedback(response_id: str, good: bool) -> dict[str, bool]:
    llmobs.record_evaluation("user_feedback", label="thumbs_up" if good else "thumbs_down", model="tiny-llm",
                             response_id=response_id)  # fmt: skip
    return {"recorded": True}
