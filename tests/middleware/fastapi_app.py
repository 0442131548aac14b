"""The FastAPI app that uvicorn serves in test_asgi.py; llmobs takes its exporter from the environment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

import llmobs
from llmobs._middleware import instrument_fastapi
from tests.middleware import scenario

llmobs.init(service_name="asgi-test")
models: dict[str, str] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    models["default"] = "test-model"  # proves the lifespan scope passed through the middleware
    yield


app = FastAPI(lifespan=lifespan)
instrument_fastapi(app)


@llmobs.monitor_inference(model="test-model", operation="chat")
async def generate(prompt: str) -> str:
    await asyncio.sleep(0.01)
    return prompt[::-1]


@llmobs.monitor_inference(model="test-model", operation="stream")
async def tokens(count: int) -> AsyncIterator[str]:
    for i in range(count):
        await asyncio.sleep(scenario.TOKEN_SECONDS)
        yield f"token{i} "


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, object]:
    return {"id": item_id, "model": models["default"]}


@app.get("/slow")
async def slow() -> str:
    await asyncio.sleep(scenario.SLOW_SECONDS)
    return "done"


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


@app.get("/admin")
async def admin(authorization: str | None = Header(None)) -> None:
    raise HTTPException(401 if authorization is None else 403)


@app.get("/limited")
async def limited() -> None:
    raise HTTPException(429)


@app.get("/stream")
async def stream() -> StreamingResponse:
    return StreamingResponse(tokens(scenario.STREAM_TOKENS), media_type="text/event-stream")


@app.get("/stream/long")
async def long_stream() -> StreamingResponse:
    return StreamingResponse(tokens(scenario.LONG_STREAM_TOKENS), media_type="text/event-stream")


@app.post("/generate")
async def generate_route(request: Request) -> dict[str, str]:
    return {"text": await generate((await request.json())["prompt"])}


@app.get("/health")
async def health() -> str:
    return "ok"


@app.get("/metrics")
async def metrics() -> PlainTextResponse:
    return PlainTextResponse("# nothing here\n")
