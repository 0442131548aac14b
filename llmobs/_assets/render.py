"""Each kind of asset as the files ``llmobs assets`` writes: name -> text."""

from __future__ import annotations

import json
from collections.abc import Callable

from . import GRAFANA
from . import kubernetes as k
from .emit import document, documents
from .rules import groups
from .thresholds import PANELS, Thresholds
from .zabbix import template


def grafana(t: Thresholds) -> dict[str, str]:
    """The committed dashboards, their threshold lines moved to ``t``'s values."""
    return {path.name: with_thresholds(path.read_text(encoding="utf-8"), t) for path in sorted(GRAFANA.glob("*.json"))}


def with_thresholds(text: str, t: Thresholds) -> str:
    board = json.loads(text)
    for panel in board["panels"]:
        if panel.get("title") in PANELS:
            panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] = getattr(t, PANELS[panel["title"]])
    return json.dumps(board, indent=2, sort_keys=True) + "\n"  # as dashboards.py writes them


def rules(t: Thresholds) -> dict[str, str]:
    return {"llmobs-rules.yml": document(groups(t))}


def zabbix(t: Thresholds) -> dict[str, str]:
    return {"llmobs-zabbix.yaml": document(template(t))}


def collector(_: Thresholds) -> dict[str, str]:
    return {"otel-collector.yaml": document(k.COLLECTOR)}


def kubernetes(t: Thresholds) -> dict[str, str]:
    return {
        "model-server.yaml": documents([k.deployment(), k.service(), k.autoscaler(t)]),
        "collector-daemonset.yaml": documents(k.collector_daemonset(document(k.COLLECTOR))),
        "servicemonitor.yaml": document(k.monitors()[0]),
        "podmonitor.yaml": document(k.monitors()[1]),
        "prometheusrule.yaml": document(k.prometheus_rule(t)),
        "dashboards-configmap.yaml": document(k.dashboards(grafana(t))),
        "prometheus-adapter-rules.yaml": document(k.adapter_rules()),
    }


RENDERERS: dict[str, Callable[[Thresholds], dict[str, str]]] = {
    "grafana": grafana, "rules": rules, "zabbix": zabbix, "kubernetes": kubernetes, "collector": collector,
}  # fmt: skip


def render(kind: str, t: Thresholds) -> dict[str, str]:
    """The files of ``kind``, with thresholds ``t``."""
    return RENDERERS[kind](t)
