"""The inventory record: every distribution importlib.metadata sees, as package URLs, once at start."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from importlib import metadata

import llmobs
from llmobs import semconv as names
from tests.otlp_receiver import OTLPReceiver


def test_the_inventory_lists_every_installed_distribution(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp()
    receiver.wait_for(lambda r: llmobs.force_flush() and r.logs(), timeout=20)
    (record,) = receiver.logs()
    assert record.event_name == names.INVENTORY_EVENT and record.severity_text == "INFO"
    seen = {
        f"pkg:pypi/{re.sub(r'[-_.]+', '-', d.metadata['Name']).lower()}@{d.version}" for d in metadata.distributions()
    }
    assert set(record.body) == seen and len(record.body) == len(seen) == record.attributes[names.INVENTORY_COUNT]
    assert f"pkg:pypi/opentelemetry-sdk@{metadata.version('opentelemetry-sdk')}" in record.body
    assert record.body == sorted(record.body)


def test_the_inventory_can_be_turned_off(otlp: Callable[..., OTLPReceiver]) -> None:
    receiver = otlp(inventory=False)
    assert "llmobs-inventory" not in {thread.name for thread in threading.enumerate()}
    time.sleep(0.3)  # what an inventory thread would need to emit (~0.1 s here)
    llmobs.shutdown()
    assert receiver.logs() == []
