"""PyTorch allocator readings: none, and no CUDA initialized, until the application initialized CUDA
itself; with CUDA initialized (a stand-in ``torch.cuda`` here: this machine has no GPU), three
readings per device keyed by the NVML UUID."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest

from llmobs import semconv as names
from llmobs._collector.torch_memory import TorchMemorySource

UUID = "3e6c2ad5-77a1-4f61-9a0e-51c1e1f5f3aa"


def test_no_readings_before_the_application_imports_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    reading = TorchMemorySource().read(holder=True)
    assert reading.values == [] and reading.complete
    assert "torch" not in sys.modules  # llmobs never imports it


def test_no_readings_and_no_cuda_initialized_while_the_application_has_not() -> None:
    torch = pytest.importorskip("torch")
    assert not torch.cuda.is_initialized()
    reading = TorchMemorySource().read(holder=True)
    assert reading.values == [] and reading.complete
    assert not torch.cuda.is_initialized()


class Cuda:
    """What ``torch.cuda`` answers on a process that initialized two GPUs."""

    def __init__(self, failing: bool = False) -> None:
        self.failing = failing

    def is_initialized(self) -> bool:
        return True

    def device_count(self) -> int:
        return 2

    def get_device_properties(self, index: int) -> Any:
        return SimpleNamespace(uuid=f"{UUID[:-1]}{index}")

    def memory_allocated(self, index: int) -> int:
        if self.failing:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return 1000 + index

    def memory_reserved(self, index: int) -> int:
        return 4096 + index

    def max_memory_allocated(self, index: int) -> int:
        return 2000 + index


def test_three_readings_per_device_once_cuda_is_initialized(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=Cuda()))
    reading = TorchMemorySource().read(holder=False)  # every process reads its own allocator
    by_device = {
        (instrument.name, dict(attributes)[names.HW_ID]): value for instrument, attributes, value in reading.values
    }
    assert by_device == {
        ("llmobs.gpu.torch.memory.allocated", f"GPU-{UUID[:-1]}0"): 1000.0,
        ("llmobs.gpu.torch.memory.reserved", f"GPU-{UUID[:-1]}0"): 4096.0,
        ("llmobs.gpu.torch.memory.peak", f"GPU-{UUID[:-1]}0"): 2000.0,
        ("llmobs.gpu.torch.memory.allocated", f"GPU-{UUID[:-1]}1"): 1001.0,
        ("llmobs.gpu.torch.memory.reserved", f"GPU-{UUID[:-1]}1"): 4097.0,
        ("llmobs.gpu.torch.memory.peak", f"GPU-{UUID[:-1]}1"): 2001.0,
    }
    assert all(dict(attributes)[names.HW_TYPE] == "gpu" for _, attributes, _ in reading.values)


def test_a_cuda_error_is_counted_and_skips_the_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=Cuda(failing=True)))
    reading = TorchMemorySource().read(holder=False)
    assert reading.values == []
    assert reading.errors == [((names.ERROR_TYPE, "torch_cuda_error"),)]
