"""Resource attributes llmobs finds without asking anyone: ``container.id`` from this process's cgroup or
mount table, and in Kubernetes ``k8s.pod.name`` (the pod's host name), ``k8s.pod.uid`` (its cgroup) and
``k8s.namespace.name`` (the service account's namespace file). No API call, no network; a file that is
missing or unreadable adds nothing. What the user sets (``OTEL_RESOURCE_ATTRIBUTES``, the downward API,
``init(resource_attributes=...)``) wins over all of these."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

CGROUP = Path("/proc/self/cgroup")
MOUNTINFO = Path("/proc/self/mountinfo")
NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope, /docker/<id>, /kubepods/.../<id>
_CGROUP_ID = re.compile(r"[/-]([0-9a-f]{64})(?:\.scope)?(?=/|$)")
# Docker and containerd bind-mount /etc/hostname and friends from the container's own directory.
_MOUNT_ID = re.compile(r"/(?:containers|sandboxes)/([0-9a-f]{64})/")
# kubepods-burstable-pod<uid with _>.slice, or /kubepods/burstable/pod<uid>/
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


def detect(cgroup: Path = CGROUP, mountinfo: Path = MOUNTINFO, namespace: Path = NAMESPACE) -> dict[str, str]:
    """The attributes found here."""
    cgroups = _read(cgroup)
    found: dict[str, str] = {}
    container = container_id(cgroups) or _first(_MOUNT_ID, _read(mountinfo))
    if container:
        found["container.id"] = container
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        found["k8s.pod.name"] = socket.gethostname()
        uid = _first(_POD_UID, cgroups)
        if uid:
            found["k8s.pod.uid"] = uid.replace("_", "-")
        name = _read(namespace).strip()
        if name:
            found["k8s.namespace.name"] = name
    return found


def container_id(cgroups: str) -> str | None:
    """The 64-hex container id in a cgroup path (cgroup v1, or v2 under systemd's scopes)."""
    for line in cgroups.splitlines():
        found: list[str] = _CGROUP_ID.findall(line.partition(":")[2].partition(":")[2])
        if found:
            return found[-1]  # the innermost: podman nests libpod-<id>.scope/container
    return None


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match[1] if match else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:1_000_000]
    except OSError:
        return ""
