"""Thresholds: defaults, KEY=VALUE settings and values files, each bad one a ConfigError naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmobs import ConfigError
from llmobs._assets.thresholds import DEFAULTS, apply, describe, read_values


def test_settings_change_only_their_keys() -> None:
    changed = apply(["error_ratio=0.1", " alert_for = 30s ", "latency_seconds=5.12"])
    assert (changed.error_ratio, changed.alert_for, changed.latency_seconds) == (0.1, "30s", 5.12)
    assert changed.gpu_temperature_celsius == DEFAULTS.gpu_temperature_celsius == 85.0
    assert apply([]) == DEFAULTS


@pytest.mark.parametrize(
    ("setting", "fix"),
    [
        ("errors=0.1", "KEY one of error_ratio"),
        ("error_ratio", "use KEY=VALUE"),
        ("error_ratio=1.5", "between 0 and 1"),
        ("error_ratio=abc", "error_ratio='abc'"),
        ("gpu_temperature_celsius=-1", "above 0"),
        ("gpu_temperature_celsius=nan", "above 0"),
        ("latency_seconds=3", "bucket boundaries: 0.01, 0.02"),
        ("ttft_seconds=0.3", "bucket boundaries: 0.001"),
        ("alert_for=5 minutes", "Prometheus duration"),
    ],
)
def test_bad_settings_say_what_to_fix(setting: str, fix: str) -> None:
    with pytest.raises(ConfigError, match=fix.replace("(", r"\(")):
        apply([setting])


def test_values_file(tmp_path: Path) -> None:
    values = tmp_path / "values"
    values.write_text("# team defaults\nerror_ratio = 0.02  # stricter\n\nbatch_stall_minutes=30\n")
    assert read_values(values) == ["error_ratio = 0.02", "batch_stall_minutes=30"]
    changed = apply(read_values(values))
    assert (changed.error_ratio, changed.batch_stall_minutes) == (0.02, 30.0)
    with pytest.raises(ConfigError, match="cannot read the values file"):
        read_values(tmp_path / "missing")


def test_every_threshold_is_described() -> None:
    assert [key for key, _, _ in describe()][:2] == ["error_ratio", "latency_seconds"]
    assert all(default and meaning for _, default, meaning in describe())
