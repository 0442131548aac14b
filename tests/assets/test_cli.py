"""``llmobs assets``: every kind written from the installed package, private, never through a link,
an existing file kept unless --force, and a bad threshold an exit 2 that names the fix."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from llmobs._assets.cli import KINDS
from llmobs._assets.render import RENDERERS
from llmobs._cli import main

EXPECTED = {
    "grafana": {"llmobs-serving.json", "llmobs-hardware.json", "llmobs-http.json"},
    "rules": {"llmobs-rules.yml"},
    "zabbix": {"llmobs-zabbix.yaml"},
    "collector": {"otel-collector.yaml"},
    "kubernetes": {"model-server.yaml", "collector-daemonset.yaml", "servicemonitor.yaml", "podmonitor.yaml",
                   "prometheusrule.yaml", "dashboards-configmap.yaml", "prometheus-adapter-rules.yaml"},
}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_writes_private_files(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / kind
    assert main(["assets", kind, "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == EXPECTED[kind]
    assert set(capsys.readouterr().out.split()) == {str(out / name) for name in EXPECTED[kind]}
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 and p.stat().st_size > 100 for p in out.iterdir())


def test_existing_files_are_kept_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "llmobs-rules.yml"
    rules.write_text("mine")
    with pytest.raises(SystemExit) as exit:
        main(["assets", "rules", "--out", str(tmp_path)])
    assert exit.value.code == 2
    assert "llmobs-rules.yml already in" in capsys.readouterr().err and rules.read_text() == "mine"
    assert main(["assets", "rules", "--out", str(tmp_path), "--force"]) == 0
    assert rules.read_text().startswith("groups:")
    assert [p.name for p in tmp_path.iterdir()] == ["llmobs-rules.yml"]  # no temporary file left


def test_a_link_is_never_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "llmobs-rules.yml").symlink_to(victim)
    (out / "llmobs-zabbix.yaml").symlink_to(tmp_path / "dangling")
    for kind in ("rules", "zabbix"):
        with pytest.raises(SystemExit):
            main(["assets", kind, "--out", str(out)])
        assert "pass --force" in capsys.readouterr().err
    assert main(["assets", "rules", "--out", str(out), "--force"]) == 0
    assert victim.read_text() == "precious" and not (tmp_path / "dangling").exists()
    assert not (out / "llmobs-rules.yml").is_symlink() and (out / "llmobs-rules.yml").read_text().startswith("groups:")


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["--set", "error_ratio=5%"], "threshold error_ratio='5%'"),
        (["--set", "gpu_temp=90"], "unknown threshold 'gpu_temp=90'"),
        (["--values", "/nonexistent/values"], "cannot read the values file"),
    ],
)
def test_bad_thresholds_exit_2_with_the_fix(
    tmp_path: Path, argv: list[str], fix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["assets", "rules", "--out", str(tmp_path / "out"), *argv])
    assert exit.value.code == 2 and fix in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_values_file_then_set(tmp_path: Path) -> None:
    values = tmp_path / "values"
    values.write_text("error_ratio=0.2\ngpu_temperature_celsius=70\n")
    argv = ["assets", "rules", "--out", str(tmp_path), "--values", str(values), "--set", "error_ratio=0.3"]
    assert main(argv) == 0
    text = (tmp_path / "llmobs-rules.yml").read_text()
    assert "> 0.3\n" in text and "> 70.0'\n" in text and "> 0.2\n" not in text


def test_the_console_command_imports_nothing_heavy() -> None:
    code = "import sys; from llmobs._cli import main; main(['assets', '--help'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "gpu_temperature_celsius" in done.stdout
    probe = "import sys, llmobs._assets.cli, llmobs._assets.render\n"
    probe += "print(sorted(m for m in sys.modules if m in ('yaml', 'grafana_foundation_sdk')))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout == "[]\n"


@pytest.mark.parametrize("kind", ["collector"])
def test_kinds_without_thresholds_refuse_them(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["assets", kind, "--out", str(tmp_path / "out"), "--set", "error_ratio=0.1"])
    assert exit.value.code == 2 and f"{kind} takes no thresholds" in capsys.readouterr().err


def test_every_kind_has_a_renderer() -> None:
    assert tuple(RENDERERS) == KINDS and set(EXPECTED) == set(KINDS)
