"""The Zabbix template's structure: a 6.0 export that YAML reads, a UUIDv4 per entity, every trigger and
calculated item naming items and macros the template defines, the thresholds as its macros. That its
patterns match a real scrape is tested in test_live.py."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import yaml

from llmobs._assets.render import RENDERERS
from llmobs._assets.thresholds import DEFAULTS, apply
from llmobs._assets.zabbix import TEMPLATE, seconds


def export(settings: list[str] | None = None) -> dict[str, Any]:
    text = RENDERERS["zabbix"](apply(settings or []))["llmobs-zabbix.yaml"]
    loaded: dict[str, Any] = yaml.safe_load(text)["zabbix_export"]
    return loaded


def test_a_zabbix_6_export_with_a_uuid_per_entity() -> None:
    found = export()
    assert found["version"] == "6.0"
    [body] = found["templates"]
    assert body["template"] == TEMPLATE and body["items"][0]["type"] == "HTTP_AGENT"
    ids = re.findall(r"'uuid': '(\w+)'", str(found))
    assert len(ids) == len(set(ids)) > 30
    assert all(uuid.UUID(i).version == 4 and len(i) == 32 for i in ids)


def test_triggers_name_defined_items_and_macros() -> None:
    found = export()
    [body] = found["templates"]
    macros = {m["macro"] for m in body["macros"]}
    keys = {i["key"] for i in body["items"]}
    expressions = [t["expression"] for t in found["triggers"]]
    for rule in body["discovery_rules"]:
        scope = keys | {p["key"] for p in rule["item_prototypes"]}
        for proto in rule["item_prototypes"]:
            if proto["type"] == "CALCULATED":
                assert set(re.findall(r"//([^)]+)\)", proto["params"])) <= scope
        for trig in rule["trigger_prototypes"]:
            assert set(re.findall(rf"/{TEMPLATE}/([^,)]+)", trig["expression"])) <= scope, trig
            assert set(re.findall(r"\{\$[A-Z._]+\}", trig["expression"])) <= macros
    for expression in expressions:
        assert set(re.findall(rf"/{TEMPLATE}/([^,)]+)", expression)) <= keys, expression
        assert set(re.findall(r"\{\$[A-Z._]+\}", expression)) <= macros


def test_the_thresholds_are_the_macros() -> None:
    macros = {m["macro"]: m["value"] for m in export()["templates"][0]["macros"]}
    assert macros["{$LLMOBS.ERROR_RATIO.MAX}"] == f"{DEFAULTS.error_ratio:g}" == "0.05"
    assert macros["{$LLMOBS.ALERT_FOR}"] == "300s" and macros["{$LLMOBS.BATCH.STALL}"] == "900s"
    changed = {m["macro"]: m["value"] for m in export(["error_ratio=0.2", "alert_for=0s"])["templates"][0]["macros"]}
    assert changed["{$LLMOBS.ERROR_RATIO.MAX}"] == "0.2" and changed["{$LLMOBS.ALERT_FOR}"] == "1s"


@pytest.mark.parametrize(("text", "expected"), [("5m", 300), ("1h30m", 5400), ("0s", 0), ("1d", 86400), ("90s", 90)])
def test_durations_in_seconds(text: str, expected: int) -> None:
    assert seconds(text) == expected
