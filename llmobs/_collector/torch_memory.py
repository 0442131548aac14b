"""PyTorch's CUDA caching allocator, per device of this process: allocated, reserved and peak bytes.
Read only once the application itself imported torch and initialized CUDA: llmobs never imports
torch, and never initializes CUDA (that would take GPU memory and fork safety from the app)."""

from __future__ import annotations

import sys
from typing import Any

from .. import semconv as names
from .._attributes import Attributes
from .reading import Errors, Reading, Value

READINGS = (
    (names.TORCH_MEMORY_ALLOCATED, "memory_allocated"),
    (names.TORCH_MEMORY_RESERVED, "memory_reserved"),
    (names.TORCH_MEMORY_PEAK, "max_memory_allocated"),
)
ERRORS = Errors((RuntimeError,), lambda _: "torch_cuda_error")


class TorchMemorySource:
    """A sampler's source; every process reads its own allocator (nothing here is host-level)."""

    attributes: Attributes = ()

    def read(self, holder: bool) -> Reading:  # noqa: ARG002 - the same in every process
        reading = Reading()
        torch = sys.modules.get("torch")
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_initialized():
            reading.add(lambda: allocator_readings(cuda), ERRORS)
        return reading

    def close(self) -> None:
        """Nothing to release."""


def allocator_readings(cuda: Any) -> list[Value]:
    """The three readings of each device ``torch.cuda`` (already initialized) sees, by its UUID as
    NVML names it (``GPU-...``, the GPU collector's ``hw.id``)."""
    values: list[Value] = []
    for index in range(cuda.device_count()):
        attributes = ((names.HW_ID, f"GPU-{cuda.get_device_properties(index).uuid}"), (names.HW_TYPE, "gpu"))
        values += [(instrument, attributes, float(getattr(cuda, read)(index))) for instrument, read in READINGS]
    return values
