"""A FastAPI server streaming tokens, instrumented with llmobs.

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


@llmobs.monitor_inference(model="tiny-llm", operation="chat")
async def generate(prompt: str) -> AsyncIterator[str]:
    llmobs.current_inference().record_tokens(input=len(prompt.split()))
    await asyncio.sleep(0.1)  # prefill
    for word in prompt.split():
        await asyncio.sleep(0.02)  # decode
        yield word + " "


@app.get("/generate")
async def generate_endpoint(prompt: str) -> StreamingResponse:
    return StreamingResponse(generate(prompt), media_type="text/plain")
