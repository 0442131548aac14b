"""What `llmobs assets` writes: dashboards, alert rules, a Zabbix template and deployment manifests, all
built from the names in semconv.py and the thresholds in thresholds.py."""
