"""The deployment pieces: an OpenTelemetry Collector configuration (OTLP in; Prometheus, remote write,
OTLP traces and logs out) and Kubernetes manifests for a model server instrumented with llmobs: its
Deployment (the downward API feeding ``k8s.*`` into ``OTEL_RESOURCE_ATTRIBUTES``), Service, Service and
Pod monitors, the Collector DaemonSet, a PrometheusRule from the alert rules, the dashboards in a
ConfigMap, and a HorizontalPodAutoscaler on in-flight calls per pod through the Prometheus adapter."""

from __future__ import annotations

from . import promql as q
from .rules import groups
from .thresholds import Thresholds

APP = "model-server"
IMAGE = "registry.example.com/model-server:latest"
COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib:0.116.1"
LABELS = {"app.kubernetes.io/name": APP}
COLLECTOR_LABELS = {"app.kubernetes.io/name": "otel-collector"}
METRICS_PORT, HTTP_PORT = 9464, 8000
Node = dict[str, object]
QUEUE_METRIC = "llmobs_inference_queue_seconds"
"""The adapter's name for the mean queue time per pod (a custom-metrics API name, not a series)."""

COLLECTOR: Node = {
    "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}}},
    "processors": {
        "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25},
        "batch": {"timeout": "5s"},
    },
    "exporters": {
        "prometheus": {"endpoint": "0.0.0.0:8889", "enable_open_metrics": True},
        "prometheusremotewrite": {"endpoint": "http://prometheus.monitoring.svc:9090/api/v1/write",
                                  "resource_to_telemetry_conversion": {"enabled": False}},
        "otlp/traces": {"endpoint": "tempo.monitoring.svc:4317", "tls": {"insecure": True}},
        "otlphttp/logs": {"endpoint": "http://loki.monitoring.svc:3100/otlp"},
        "debug": {"verbosity": "basic"},
    },
    "extensions": {"health_check": {"endpoint": "0.0.0.0:13133"}},
    "service": {
        "extensions": ["health_check"],
        "pipelines": {
            "metrics": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"],
                        "exporters": ["prometheus", "prometheusremotewrite"]},
            "traces": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["otlp/traces"]},
            "logs": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"],
                     "exporters": ["otlphttp/logs", "debug"]},
        },
    },
}  # fmt: skip
"""Metrics, traces and logs in over OTLP; the Prometheus exporter applies the same name translation as
llmobs's scrape endpoint, so the dashboards and rules work behind either."""

DOWNWARD = {
    "K8S_POD_NAME": "metadata.name", "K8S_NAMESPACE_NAME": "metadata.namespace", "K8S_NODE_NAME": "spec.nodeName",
    "K8S_POD_UID": "metadata.uid", "NODE_IP": "status.hostIP",
}  # fmt: skip
RESOURCE = "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME),"
RESOURCE += "k8s.pod.uid=$(K8S_POD_UID),k8s.deployment.name=" + APP


def metadata(name: str, labels: dict[str, str] = LABELS, **extra: str) -> Node:
    return {"name": name, "labels": {**labels, **extra}}


def deployment() -> Node:
    env: list[Node] = [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in DOWNWARD.items()]
    env += [{"name": k, "value": v} for k, v in {
        "OTEL_SERVICE_NAME": APP, "OTEL_RESOURCE_ATTRIBUTES": RESOURCE,
        "OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_HOST": "0.0.0.0",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(METRICS_PORT),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://$(NODE_IP):4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }.items()]  # fmt: skip
    container = {
        "name": APP, "image": IMAGE, "env": env,
        "ports": [{"name": "http", "containerPort": HTTP_PORT}, {"name": "metrics", "containerPort": METRICS_PORT}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5},
        "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "32Gi"}, "requests": {"cpu": "4", "memory": "32Gi"}},
    }  # fmt: skip
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(APP),
        "spec": {"replicas": 2, "selector": {"matchLabels": LABELS},
                 "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [container]}}},
    }  # fmt: skip


def service() -> Node:
    ports = [{"name": "http", "port": HTTP_PORT, "targetPort": "http"},
             {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]  # fmt: skip
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(APP),
            "spec": {"selector": LABELS, "ports": ports}}  # fmt: skip


def monitors() -> list[Node]:
    """The Prometheus Operator's ServiceMonitor and PodMonitor: apply one of the two, not both."""
    endpoint = {"port": "metrics", "interval": "15s", "path": "/metrics"}
    return [
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": metadata(APP),
         "spec": {"selector": {"matchLabels": LABELS}, "endpoints": [endpoint],
                  "jobLabel": "app.kubernetes.io/name"}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": metadata(APP),
         "spec": {"selector": {"matchLabels": LABELS}, "podMetricsEndpoints": [endpoint],
                  "jobLabel": "app.kubernetes.io/name"}},
    ]  # fmt: skip


def autoscaler(t: Thresholds) -> Node:
    """Scale on llmobs's own load signal: in-flight inference calls per pod."""
    metric = {
        "metric": {"name": q.ACTIVE},
        "target": {"type": "AverageValue", "averageValue": f"{t.inflight_per_pod:g}"},
    }
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": metadata(APP),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "minReplicas": 2, "maxReplicas": 16, "metrics": [{"type": "Pods", "pods": metric}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }  # fmt: skip


def adapter_rules() -> Node:
    """The Prometheus adapter's configuration serving the autoscaler's custom metrics per pod: in-flight
    calls, and the mean queue time over 2 minutes (docs/kubernetes.md has the HPA metric for it)."""
    pods = {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}}
    rate = "sum(rate({0}_{1}{{<<.LabelMatchers>>}}[2m])) by (<<.GroupBy>>)"
    mean = f"{rate.format(q.QUEUE, 'sum')}\n/ {rate.format(q.QUEUE, 'count')}"
    return {"rules": [
        {"seriesQuery": f'{q.ACTIVE}{{namespace!="",pod!=""}}', "resources": pods,
         "name": {"matches": f"^{q.ACTIVE}$", "as": q.ACTIVE},
         "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"},
        {"seriesQuery": f'{q.QUEUE}_count{{namespace!="",pod!=""}}', "resources": pods,
         "name": {"matches": f"^{q.QUEUE}_count$", "as": QUEUE_METRIC}, "metricsQuery": mean},
    ]}  # fmt: skip


def collector_daemonset(config: str) -> list[Node]:
    """The Collector on every node (its OTLP ports on the node's IP), its configuration in a ConfigMap."""
    container = {
        "name": "otel-collector", "image": COLLECTOR_IMAGE, "args": ["--config=/conf/collector.yaml"],
        "ports": [{"name": "otlp-grpc", "containerPort": 4317, "hostPort": 4317},
                  {"name": "otlp-http", "containerPort": 4318, "hostPort": 4318},
                  {"name": "metrics", "containerPort": 8889}],
        "env": [{"name": "GOMEMLIMIT", "value": "400MiB"}],
        "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "200m", "memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": 13133}},
        "volumeMounts": [{"name": "config", "mountPath": "/conf"}],
    }  # fmt: skip
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata("otel-collector", COLLECTOR_LABELS),
         "data": {"collector.yaml": config}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": metadata("otel-collector", COLLECTOR_LABELS),
         "spec": {"selector": {"matchLabels": COLLECTOR_LABELS}, "template": {
             "metadata": {"labels": COLLECTOR_LABELS},
             "spec": {"containers": [container],
                      "volumes": [{"name": "config", "configMap": {"name": "otel-collector"}}]}}}},
    ]  # fmt: skip


def prometheus_rule(t: Thresholds) -> Node:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": metadata("llmobs", {"app.kubernetes.io/part-of": "llmobs"}), "spec": groups(t)}  # fmt: skip


def dashboards(data: dict[str, str]) -> Node:
    """The dashboards (file name -> JSON) in a ConfigMap labelled for the Grafana sidecar (``grafana_dashboard``)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata("llmobs-dashboards", {"app.kubernetes.io/part-of": "llmobs"}, grafana_dashboard="1"),
            "data": data}  # fmt: skip
