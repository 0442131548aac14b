"""The asset tests that need the test extra's packages are left out where those are not installed (the
core leg of CI): YAML readers, the Grafana SDK, kubernetes-validate, the web stack."""

from __future__ import annotations

from importlib.util import find_spec

NEEDS = {
    "test_emit.py": ["yaml"],
    "test_rules.py": ["yaml"],
    "test_dashboards.py": ["grafana_foundation_sdk"],
    "test_live.py": ["httpx", "fastapi", "uvicorn"],
    "test_kubernetes.py": ["yaml", "kubernetes_validate"],
    "test_zabbix.py": ["yaml"],
}
collect_ignore = [name for name, modules in NEEDS.items() if any(find_spec(module) is None for module in modules)]
