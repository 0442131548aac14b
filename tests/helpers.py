"""Helpers the tests share: the attributes of a plain call, and reading back what was exported."""

from __future__ import annotations

from typing import Any

import llmobs
from tests.otlp_receiver import OTLPReceiver

BASE = {"gen_ai.request.model": "m", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "llmobs"}


def exported(receiver: OTLPReceiver, name: str, attributes: dict[str, Any] | None = None) -> list[Any]:
    """Force an export and return the points of ``name`` whose attributes equal ``attributes`` exactly."""
    assert llmobs.force_flush(timeout=5)
    points = receiver.latest(name)
    if attributes is None:
        return points
    return [p for p in points if p.attributes == attributes]


def one(receiver: OTLPReceiver, name: str, attributes: dict[str, Any]) -> Any:
    """The single exported point of ``name`` with exactly ``attributes``."""
    points = exported(receiver, name, attributes)
    assert len(points) == 1, f"{name} {attributes}: {[p.attributes for p in receiver.latest(name)]}"
    return points[0]
