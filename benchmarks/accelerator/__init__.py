"""A prototype C accelerator for the metrics-only call, measured against pure-Python llmobs and
prometheus_client (issue 15): ``python -m benchmarks.accelerator [--quick]``.

Not part of llmobs: the issue asks what it would buy before it is added. ``build`` compiles
``_accel.c`` with setuptools (the path a wheel takes) into a directory and imports it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path
from types import ModuleType

SOURCE = Path(__file__).with_name("_accel.c")


def build(directory: Path) -> ModuleType:
    """Compile the prototype into ``directory`` (quietly, unless it fails) and import it."""
    from setuptools import Distribution, Extension

    extension = Extension("_accel", [str(SOURCE)], extra_compile_args=["-Wall", "-Werror"])
    distribution = Distribution({"name": "llmobs-accelerator-prototype", "ext_modules": [extension]})
    command = distribution.get_command_obj("build_ext")
    command.build_lib = str(directory)
    command.build_temp = str(directory / "build")
    command.ensure_finalized()
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            command.run()
    except Exception:
        print(output.getvalue())
        raise
    path = command.get_ext_fullpath("_accel")
    spec = importlib.util.spec_from_file_location("_accel", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
