"""The requests every served app gets, sent once per server with httpx; what came back is kept
for the tests to compare with what the server exported."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.middleware import scenario as s


@dataclass
class Sent:
    """Statuses per path kind, the parent span id sent with each trace id, the streamed bodies, and
    the seconds each kind took as the client timed it (a bound for what the server measured)."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    stream_first_chunk: float = 0.0
    stream_second_chunk: float = 0.0
    parents: dict[str, str] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)
    stream_body: bytes = b""
    disconnected_after: bytes = b""


def _traced(sent: Sent, n: int) -> dict[str, str]:
    """Headers continuing trace ``n`` (distinct per request), remembered in ``sent.parents``."""
    header = s.traceparent(n, n)
    sent.parents[f"{n:032x}"] = f"{n:016x}"
    return {"traceparent": header}


async def drive(url: str) -> Sent:
    sent = Sent()
    # A connection per request: a pooled one the server has just timed out would fail the request.
    limits = httpx.Limits(max_connections=s.CONCURRENT, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        items = await asyncio.gather(
            *(client.get(f"/items/{n}", headers=_traced(sent, n)) for n in range(1, s.CONCURRENT + 1))
        )
        for response in items:
            sent.statuses["item", response.status_code] += 1
            sent.pids.update([response.json().get("pid", 0)])
        calls: list[tuple[str, str, dict[str, Any]]] = [
            *[("slow", "/slow", {})] * s.SLOW_CALLS,
            *[("boom", "/boom", {})] * s.BOOM_CALLS,
            *[("missing", "/nope", {})] * s.MISSING_CALLS,
            *[("admin", "/admin", {})] * s.UNAUTHORIZED_CALLS,
            *[("admin", "/admin", {"authorization": "Bearer wrong"})] * s.FORBIDDEN_CALLS,
            *[("limited", "/limited", {})] * s.LIMITED_CALLS,
            *[("skipped", path, {}) for path in s.SKIPPED_PATHS] * s.SKIPPED_CALLS,
        ]
        started = time.perf_counter()
        for kind, path, headers in calls:
            began = time.perf_counter()
            sent.statuses[kind, (await client.get(path, headers=headers)).status_code] += 1
            sent.seconds[kind] = sent.seconds.get(kind, 0.0) + time.perf_counter() - began
            if kind != "slow":  # the server timed each slow call's end before it answered this one
                sent.seconds.setdefault("slow, until the next response", time.perf_counter() - started)
        began = time.perf_counter()
        async with client.stream("GET", "/stream", headers=_traced(sent, 100_001)) as stream:
            async for chunk in stream.aiter_raw():
                if not sent.stream_body:
                    sent.stream_first_chunk = time.perf_counter() - began
                elif not sent.stream_second_chunk:
                    sent.stream_second_chunk = time.perf_counter() - began
                sent.stream_body += chunk
        sent.seconds["stream"] = time.perf_counter() - began
        sent.statuses["stream", stream.status_code] += 1
        generated = await client.post(
            s.CANARY_URL, json=s.CANARY_BODY, headers={**s.CANARY_HEADERS, **_traced(sent, 100_002)}
        )
        # The server ends a duration once its last send returns, which a loaded machine can schedule
        # after the client has read the last byte. By the next response it has, unless another worker
        # answered that one sooner than this worker resumed: a request's time, not 0.1 ms, of slack.
        sent.seconds["stream, until the next response"] = time.perf_counter() - began
        sent.statuses["generate", generated.status_code] += 1
    sent.disconnected_after = await _leave_mid_stream(url)
    return sent


async def _leave_mid_stream(url: str) -> bytes:
    """Read two chunks of the long stream, then hang up."""
    received = b""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client, client.stream("GET", "/stream/long") as response:
        async for chunk in response.aiter_raw():
            received += chunk
            if received.count(b"token") >= 2:
                break
    return received
