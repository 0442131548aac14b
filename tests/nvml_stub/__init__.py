"""A C stand-in for ``libnvidia-ml.so.1`` that the real nvidia-ml-py bindings load (see nvml_stub.c),
and the configuration file it serves devices and faults from."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

SOURCE = Path(__file__).with_name("nvml_stub.c")
LIBRARY = "libnvidia-ml.so.1"
GIB = 2**30

NOT_SUPPORTED, NO_PERMISSION, DRIVER_NOT_LOADED = 3, 4, 9  # NVML return codes


@dataclass(frozen=True)
class Err:
    """An NVML return code a field answers with instead of a value."""

    code: int


Gpu = Mapping[str, object]
"""Fields (see nvml_stub.c) to numbers, ``Err``, or text for name/uuid; also ``processes``:
[(pid, bytes)], ``lost_after``: n, and ``sleep``: (field, seconds), which hangs this device only."""

H100: Gpu = {
    "name": "NVIDIA H100 80GB HBM3",
    "util": 87,
    "util_mem": 40,
    "mem_total": 80 * GIB,
    "mem_used": 31 * GIB,
    "temp": 71,
    "power": 245_000,
    "energy": 9_000_000,
    "clock_sm": 1980,
    "clock_mem": 2619,
    "throttle": 0x4,
    "ecc_corrected": 3,
    "ecc_uncorrected": 0,
    "pcie_tx": 1000,
    "pcie_rx": 2000,
    "pcie_tx_bytes": 10**9,
    "pcie_rx_bytes": 2 * 10**9,
    "enc": 5,
    "dec": 7,
}


def build(directory: Path) -> Path:
    """Compile the stand-in into ``directory`` as libnvidia-ml.so.1; returns ``directory``, for
    LD_LIBRARY_PATH (read at process start, so only processes started afterwards load it)."""
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
            f"-Wl,-soname,{LIBRARY}",
            "-o",
            str(directory / LIBRARY),
            str(SOURCE),
        ],
        check=True,
    )
    return directory


def uuid(index: int) -> str:
    """The UUID the stand-in gives device ``index`` unless the configuration names one."""
    return f"GPU-00000000-0000-0000-0000-0000000000{index:02d}"


def configure(path: Path, gpus: Sequence[Gpu], init: int | None = None) -> None:
    """Write the configuration; replaced atomically (a new inode), so the library reads it whole."""
    lines = [f"init {init}"] if init is not None else []
    lines.append(f"count {len(gpus)}")
    for index, gpu in enumerate(gpus):
        lines += [f"{index} {line}" for key, value in gpu.items() for line in _lines(key, value)]
    staged = path.with_suffix(".new")
    staged.write_text("\n".join(lines) + "\n")
    os.replace(staged, path)


def _lines(key: str, value: object) -> list[str]:
    if key == "processes":
        return [f"proc {pid} {used}" for pid, used in cast("Sequence[tuple[int, int]]", value)]
    if key == "sleep":
        name, seconds = cast("tuple[str, float]", value)
        return [f"sleep {name} {seconds}"]
    if isinstance(value, Err):
        return [f"{key} !{value.code}"]
    return [f"{key} {value}"]
