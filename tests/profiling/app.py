"""The app a real uvicorn serves in test_server.py: a tiny torch model (PROFILE_TORCH=1) or plain
Python (torch never imported), behind a plain ``def`` endpoint (run on the thread pool) and an
``async def`` one (run on the event loop)."""

from __future__ import annotations

import logging
import os
import sys
import threading

from fastapi import FastAPI

import llmobs

logging.basicConfig(level=logging.INFO)  # llmobs's "where the files are" lines reach the server's output

if os.environ.get("PROFILE_TORCH") == "1":
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))

    def run(n: int) -> float:
        with torch.no_grad():
            return float(model(torch.ones(n, 16)).sum())

else:

    def run(n: int) -> float:
        return float(sum(i * i for i in range(n * 1000)))


llmobs.init(service_name="profiling-test")
app = FastAPI()


@llmobs.monitor_inference(model="tiny", operation="predict")
def predict(n: int) -> dict[str, object]:
    return {"y": run(n), "thread": threading.get_ident()}


@llmobs.monitor_inference(model="tiny-async", operation="predict")
async def predict_async(n: int) -> dict[str, object]:
    return {"y": run(n), "thread": threading.get_ident()}


@app.get("/health")
def health() -> dict[str, bool]:
    return {"torch": "torch" in sys.modules}


@app.get("/sync")
def sync_endpoint(n: int = 1) -> dict[str, object]:
    return predict(n)


@app.get("/async")
async def async_endpoint(n: int = 1) -> dict[str, object]:
    return await predict_async(n)
