"""Keyed readings that come and go (network interfaces, devices): the publisher keeps only live keys,
a counter that comes back takes a new baseline, a vanished gauge is withdrawn, and memory stays bounded."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace

import psutil
import pytest

from llmobs import semconv as names
from llmobs._aggregation import Registry, ValueSnapshot
from llmobs._attributes import Attributes
from llmobs._collector.host import HostSource
from llmobs._collector.publish import Publisher
from llmobs._collector.reading import Reading, Value


def exported(registry: Registry, name: str, attribute: str) -> dict[object, float]:
    """``name``'s exported values by the value of ``attribute`` (transmit only, for network bytes)."""
    return {
        dict(attributes)[attribute]: snapshot.value
        for instrument, points in registry.collect()
        if instrument.name == name
        for attributes, snapshot in points
        if isinstance(snapshot, ValueSnapshot) and dict(attributes).get(names.IO_DIRECTION) != "receive"
    }


def test_interfaces_that_come_and_go(monkeypatch: pytest.MonkeyPatch) -> None:
    nics: dict[str, SimpleNamespace] = {}

    def net_io_counters(pernic: bool) -> dict[str, SimpleNamespace]:
        if not nics:
            raise OSError("unreadable")
        return nics

    monkeypatch.setattr(psutil, "net_io_counters", net_io_counters)
    registry, source = Registry(), HostSource()
    publisher = Publisher(registry, 60, 100)

    def sample(**sent: int) -> dict[object, float]:
        """Interfaces and the bytes they sent (none: psutil fails); returns what is exported."""
        nics.clear()
        nics.update({name: SimpleNamespace(bytes_sent=total, bytes_recv=0) for name, total in sent.items()})
        publisher.publish(source.read(holder=True), fresh=True)
        return exported(registry, "system.network.io", names.INTERFACE)

    def known() -> tuple[set[object], set[object]]:
        """The interfaces in the publisher's running totals, and in its series."""

        def of(keys: Iterable[tuple[str, Attributes]]) -> set[object]:
            return {dict(a)[names.INTERFACE] for n, a in keys if n == "system.network.io"}

        return of(publisher._totals), of(publisher._series)

    assert sample(a=100, b=1000) == {"a": 0, "b": 0}
    assert sample(a=150, b=1100) == {"a": 50, "b": 100}
    assert sample(b=1200) == {"b": 200}  # a is gone: its series is no longer exported
    assert known() == ({"b"}, {"b"})
    assert sample(a=5000, b=1300) == {"a": 0, "b": 300}  # a starts over: a new baseline, no jump
    assert sample(a=5100, b=1400) == {"a": 100, "b": 400}
    assert sample() == {"a": 100, "b": 400}  # a failed reading forgets nothing
    assert known() == ({"a", "b"}, {"a", "b"})
    assert sample(a=5200, b=1500) == {"a": 200, "b": 500}


def test_gauges_withdrawn_and_memory_bounded() -> None:
    registry = Registry()
    publisher = Publisher(registry, 60, limit=50)

    def publish(*devices: str, errors: bool = False) -> None:
        values: list[Value] = []
        for device in devices:
            attributes = ((names.HW_ID, device),)
            values += [
                (names.GPU_UTILIZATION, attributes, 0.5 if device == "a" else 0.9),
                (names.GPU_ENERGY, attributes, 100.0),
            ]
        publisher.publish(Reading(values, [((names.ERROR_TYPE, "x"),)] if errors else []), fresh=True)

    def utilization(name: str = "hw.gpu.utilization") -> dict[object, float]:
        return exported(registry, name, names.HW_ID)

    publish("a", "b")
    publisher.publish(Reading([(names.GPU_UTILIZATION, ((names.HW_ID, "a"),), 1.0)]), fresh=True)  # a peaks
    publish("b")
    assert utilization() == {"b": 0.9} and utilization("llmobs.hw.gpu.utilization.max") == {"b": 0.9}
    assert {dict(a)[names.HW_ID] for _, a in publisher._series} == {"b"}
    assert set(publisher._peaks) | publisher._gauges | set(publisher._totals) == {
        ("hw.gpu.utilization", ((names.HW_ID, "b"),)),
        ("hw.energy", ((names.HW_ID, "b"),)),
    }
    publish("a", "b")
    assert utilization() == {"a": 0.5, "b": 0.9}
    assert utilization("llmobs.hw.gpu.utilization.max") == {"a": 0.5, "b": 0.9}  # a's old maximum is gone

    for i in range(10_000):  # keys come and go; every other reading failed in part, and prunes nothing
        publish(f"d{i}", errors=i % 2 == 1)
        assert len(publisher._totals) <= 50 and len(publisher._gauges) <= 1 and len(publisher._series) <= 52
    publish(*(f"e{i}" for i in range(10_000)))  # one reading with 10,000 keys
    assert len(publisher._totals) == len(publisher._gauges) == len(publisher._peaks) == 50
    assert len(publisher._series) == 150
    publish()
    assert not (publisher._totals or publisher._gauges or publisher._peaks or publisher._series)
