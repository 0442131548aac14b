"""What ``llmobs assets`` writes: dashboards, alert rules, a Zabbix template and deployment manifests, all
built from the names in semconv.py and the thresholds in thresholds.py."""

from pathlib import Path

DATA = Path(__file__).with_name("data")
"""The committed package data: ``grafana/*.json``, the dashboards users import."""
GRAFANA = DATA / "grafana"
