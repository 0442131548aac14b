"""Resource detection without API calls: container.id from cgroup v1, cgroup v2 (systemd scopes) and the
mount table; k8s.pod.name, k8s.pod.uid and k8s.namespace.name inside Kubernetes only; what the user
sets in OTEL_RESOURCE_ATTRIBUTES wins."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from llmobs import _config, _lifecycle
from llmobs._resource import container_id, detect

ID = "8f2d1c0b9a8e7f6d5c4b3a29180716253443526170819a8b7c6d5e4f3a2b1c0d"
UID = "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e"
POD = f"kubepods-burstable-pod{UID.replace('-', '_')}.slice"
V2 = f"0::/kubepods.slice/kubepods-burstable.slice/{POD}/cri-containerd-{ID}.scope\n"
MOUNTS = f"1207 1190 8:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw\n"


@pytest.mark.parametrize(
    "cgroup",
    [
        f"12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n",
        f"11:pids:/kubepods/burstable/pod{UID}/{ID}\n",
        f"0::/system.slice/docker-{ID}.scope\n",
        V2,
        f"0::/machine.slice/libpod-{ID}.scope/container\n",
    ],
)
def test_container_id_from_the_cgroup(cgroup: str) -> None:
    assert container_id(cgroup) == ID


def test_no_container_outside_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    (tmp_path / "cgroup").write_text("0::/user.slice/user-1000.slice/session-2.scope\n")
    (tmp_path / "mountinfo").write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
    assert detect(tmp_path / "cgroup", tmp_path / "mountinfo", tmp_path / "missing") == {}
    assert detect(tmp_path / "missing", tmp_path / "missing", tmp_path / "missing") == {}


def test_cgroup_v2_without_an_id_falls_back_to_the_mount_table(tmp_path: Path) -> None:
    (tmp_path / "cgroup").write_text("0::/\n")
    (tmp_path / "mountinfo").write_text(MOUNTS)
    assert detect(tmp_path / "cgroup", tmp_path / "mountinfo", tmp_path / "missing")["container.id"] == ID


def test_kubernetes_pod_and_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cgroup").write_text(V2)
    (tmp_path / "namespace").write_text("serving\n")
    assert "k8s.pod.name" not in detect(tmp_path / "cgroup", tmp_path / "missing", tmp_path / "namespace")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert detect(tmp_path / "cgroup", tmp_path / "missing", tmp_path / "namespace") == {
        "container.id": ID, "k8s.pod.name": socket.gethostname(), "k8s.pod.uid": UID, "k8s.namespace.name": "serving",
    }  # fmt: skip


def test_user_attributes_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=from-downward-api,k8s.node.name=node-7")
    resource = _lifecycle._resource(_config.load(service_name="svc"))
    assert resource.attributes["k8s.pod.name"] == "from-downward-api"
    assert resource.attributes["k8s.node.name"] == "node-7" and resource.attributes["service.name"] == "svc"
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    assert _lifecycle._resource(_config.load()).attributes["k8s.pod.name"] == socket.gethostname()
