"""The Kubernetes manifests validate against the Kubernetes 1.37 schemas offline (kubernetes-validate,
strict: no unknown fields); the Prometheus Operator's resources, which it has no schemas for, are
checked for what they must reference; the Collector configuration's pipelines use only components it
defines. No otelcol binary is packaged for Debian, so the Collector itself does not run here."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from llmobs._assets import GRAFANA
from llmobs._assets import promql as q
from llmobs._assets.kubernetes import QUEUE_METRIC
from llmobs._assets.render import RENDERERS
from llmobs._assets.rules import groups
from llmobs._assets.thresholds import DEFAULTS, apply
from tests.prometheus.server import PROMTOOL, needs_promtool

BUILTIN = {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "DaemonSet"}


def manifests() -> dict[str, dict[str, Any]]:
    """Every document written by ``llmobs assets kubernetes``, by kind."""
    found = {}
    for name, text in RENDERERS["kubernetes"](DEFAULTS).items():
        for doc in yaml.safe_load_all(text):
            if "kind" in doc:
                found[doc["kind"] if doc["kind"] != "ConfigMap" else doc["metadata"]["name"]] = doc
            else:
                found[name] = doc
    return found


def test_builtin_kinds_validate_against_the_schemas() -> None:
    docs = [d for d in manifests().values() if d.get("kind") in BUILTIN]
    assert {d["kind"] for d in docs} == BUILTIN and len(docs) == 6  # two ConfigMaps
    for doc in docs:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_a_broken_manifest_fails_validation() -> None:
    broken = manifests()["HorizontalPodAutoscaler"]
    broken["spec"]["metrics"][0]["pods"]["target"]["averageValue"] = {"four": 4}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37.0", strict=True)


def test_the_downward_api_feeds_the_resource_attributes() -> None:
    container = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    fields = {name: e["valueFrom"]["fieldRef"]["fieldPath"] for name, e in env.items() if "valueFrom" in e}
    attributes = dict(pair.split("=") for pair in env["OTEL_RESOURCE_ATTRIBUTES"]["value"].split(","))
    resolved = {key: fields.get(value.strip("$()"), value) for key, value in attributes.items()}
    assert resolved["k8s.pod.name"] == "metadata.name" and resolved["k8s.namespace.name"] == "metadata.namespace"
    assert resolved["k8s.node.name"] == "spec.nodeName"
    # $(VAR) expands only variables defined earlier in the list.
    names = [e["name"] for e in container["env"]]
    assert names.index("OTEL_RESOURCE_ATTRIBUTES") > max(names.index(n) for n in fields)
    assert env["OTEL_EXPORTER_PROMETHEUS_HOST"]["value"] == "0.0.0.0"


def test_monitors_and_the_autoscaler_reference_what_exists() -> None:
    docs = manifests()
    service_ports = {p["name"] for p in docs["Service"]["spec"]["ports"]}
    pod = docs["Deployment"]["spec"]["template"]
    pod_ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert (
        docs["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items()
        <= docs["Service"]["metadata"]["labels"].items()
    )
    assert {e["port"] for e in docs["ServiceMonitor"]["spec"]["endpoints"]} <= service_ports
    assert docs["PodMonitor"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert {e["port"] for e in docs["PodMonitor"]["spec"]["podMetricsEndpoints"]} <= pod_ports
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    adapter, queue = docs["prometheus-adapter-rules.yaml"]["rules"]
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == adapter["name"]["as"] == q.ACTIVE
    assert adapter["seriesQuery"].startswith(q.ACTIVE + "{")
    assert queue["name"]["as"] == QUEUE_METRIC and f"rate({q.QUEUE}_sum{{" in queue["metricsQuery"]
    assert apply(["inflight_per_pod=8"]).inflight_per_pod == 8


def test_the_dashboards_configmap_holds_the_committed_json() -> None:
    configmap = manifests()["llmobs-dashboards"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"] == {p.name: p.read_text() for p in GRAFANA.glob("*.json")}


@needs_promtool
def test_the_prometheusrule_holds_the_rules(tmp_path: Path) -> None:
    rule = manifests()["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["spec"] == groups(DEFAULTS)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule["spec"]))
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("source", ["collector", "kubernetes"])
def test_collector_pipelines_use_defined_components(source: str) -> None:
    if source == "collector":
        config = yaml.safe_load(RENDERERS["collector"](DEFAULTS)["otel-collector.yaml"])
    else:
        config = yaml.safe_load(manifests()["otel-collector"]["data"]["collector.yaml"])
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"metrics", "traces", "logs"}
    for pipeline in pipelines.values():
        for part in ("receivers", "processors", "exporters"):
            assert pipeline[part] and set(pipeline[part]) <= set(config[part])
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    assert {"prometheus", "prometheusremotewrite"} <= set(pipelines["metrics"]["exporters"])
    assert pipelines["metrics"]["processors"][0] == "memory_limiter"  # first, as the Collector advises
