"""The committed dashboards: exactly what the generator writes today, importable (unique panel ids, the
Prometheus datasource a variable, every query through it), and querying the contract's metrics."""

from __future__ import annotations

import json

import pytest

from llmobs._assets import GRAFANA
from llmobs._assets import promql as q
from llmobs._assets.dashboards import DASHBOARDS, render
from llmobs._assets.render import RENDERERS
from llmobs._assets.thresholds import DEFAULTS, PANELS, apply
from llmobs._prometheus.names import metric_name


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_committed_json_is_what_the_generator_writes(uid: str) -> None:
    assert (GRAFANA / f"{uid}.json").read_text() == render(uid), "run: python -m llmobs._assets.dashboards"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_dashboards_are_importable(uid: str) -> None:
    board = json.loads((GRAFANA / f"{uid}.json").read_text())
    assert board["uid"] == uid and board["schemaVersion"] >= 36 and board["title"].startswith("llmobs: ")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"service", "instance"} <= variables.keys()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in (p for p in board["panels"] if p["type"] != "row"):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["options"] and panel["fieldConfig"]["defaults"]["unit"]
        assert panel["targets"] and all('job=~"$service"' in t["expr"] for t in panel["targets"])


def test_the_dashboards_query_every_contract_metric() -> None:
    text = "".join(path.read_text() for path in GRAFANA.glob("*.json"))
    assert [name for name in map(metric_name, q.CONTRACT) if name not in text] == []


def test_thresholds_move_the_lines_and_nothing_else() -> None:
    committed = {p.name: p.read_text() for p in GRAFANA.glob("*.json")}
    assert RENDERERS["grafana"](DEFAULTS) == committed
    changed = RENDERERS["grafana"](apply(["gpu_temperature_celsius=78", "error_ratio=0.02"]))
    lines = {}
    for name, text in changed.items():
        before, after = json.loads(committed[name]), json.loads(text)
        for old, new in zip(before["panels"], after["panels"], strict=True):
            if old != new:
                assert old["title"] in PANELS
                lines[new["title"]] = new["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
    assert lines == {"GPU temperature": 78.0, "Error ratio by error.type": 0.02}
    drawn = [p for text in committed.values() for p in json.loads(text)["panels"] if p.get("title") in PANELS]
    assert len(drawn) == len(PANELS)
