"""A batch embedding job: items, tokens, progress and duration, flushed before the process exits.

python examples/batch_job.py
"""

from __future__ import annotations

import time

import llmobs


@llmobs.monitor_inference(model="tiny-embedder", operation="embeddings")
def embed(texts: list[str]) -> list[list[float]]:
    llmobs.current_inference().record_tokens(input=sum(len(t.split()) for t in texts))
    time.sleep(0.01)
    return [[float(len(t))] for t in texts]


def main() -> None:
    llmobs.init(service_name="nightly-embeddings", export_interval=1)
    docs = [f"document number {i}" for i in range(2000)]
    with llmobs.monitor_batch("nightly-embeddings", total=len(docs)) as batch:
        for start in range(0, len(docs), 64):
            chunk = docs[start : start + 64]
            embed(chunk)
            batch.advance(len(chunk), tokens=sum(len(d.split()) for d in chunk))
    llmobs.shutdown()


if __name__ == "__main__":
    main()
