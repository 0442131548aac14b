"""The report's GPU lines from a history that a process with the stand-in NVML (tests/nvml_stub) wrote:
utilization, memory, temperature and power as NVML served them, and energy per 1000 output tokens from
the energy counter's increase over the tokens the calls produced."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests import nvml_stub

ROOT = Path(__file__).parents[2]
WORKLOAD = """
import time, llmobs
from llmobs import _lifecycle
from tests import nvml_stub
from pathlib import Path
# Exported by force_flush alone: an export may take at most the interval, which a 0.2 s one left little of.
llmobs.init(service_name="gpu-report", summary=False, host=False, collect_interval=0.1, export_interval=3600)

@llmobs.monitor_inference(model="m", operation="chat")
def call():
    llmobs.current_inference().record_tokens(input=10, output=100)

def energy_read(joules):
    # Polled, not a fixed sleep: a loaded machine samples late.
    deadline = time.monotonic() + 30
    while True:
        collected = _lifecycle.state.registry.collect()
        read = [s.value for i, series in collected if i.name == "hw.energy" for _, s in series]
        if read == [joules]:
            return
        assert time.monotonic() < deadline, read
        time.sleep(0.05)

energy_read(0.0)  # the energy counter's baseline, read
assert llmobs.force_flush()  # and exported
for _ in range(10):
    call()
nvml_stub.configure(Path("{config}"), [{{**nvml_stub.H100, "energy": nvml_stub.H100["energy"] + 1_000_000}}])
energy_read(1000.0)  # 1000 J more, read
assert llmobs.force_flush()  # and exported
llmobs.shutdown()
"""


@pytest.mark.skipif(find_spec("matplotlib") is None, reason="the report extra is not installed")
def test_gpu_readings_and_energy_per_1000_output_tokens(tmp_path: Path) -> None:
    library, config, history = nvml_stub.build(tmp_path), tmp_path / "nvml.conf", tmp_path / "history.db"
    nvml_stub.configure(config, [nvml_stub.H100])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMOBS_"))}
    env.update(
        PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path), LD_LIBRARY_PATH=str(library), NVML_STUB_CONFIG=str(config),
        LLMOBS_HISTORY=str(history),
    )  # fmt: skip
    code = WORKLOAD.format(config=config)
    wrote = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=60, capture_output=True, text=True)
    assert wrote.returncode == 0, wrote.stderr
    result = subprocess.run(
        [sys.executable, "-m", "llmobs._cli", "report", "--history", str(history), "--out", str(tmp_path / "r.html")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  gpu0:  util mean 87% max 87%  mem max 31.0 GiB  max 71°C  power mean 245 W" in lines, lines
    assert "  energy: 1000.0 J per 1000 output tokens" in lines
