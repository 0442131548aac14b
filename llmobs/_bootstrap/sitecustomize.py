"""Started by ``llmobs run``: ``llmobs.init()`` from the environment, transformers instrumented once
the program imports it, then the ``sitecustomize`` this one shadows, if there is one."""

from __future__ import annotations

import os
import sys


def _start() -> None:
    import llmobs
    from llmobs._post_import import when_imported

    llmobs.init()
    if "transformers" in os.environ.get("LLMOBS_LAUNCHER_INSTRUMENT", "").split(","):
        when_imported("transformers", lambda: llmobs.instrument_transformers())  # looked up (imported) then


def _run_shadowed() -> None:
    """The next ``sitecustomize`` on the path (a virtualenv's, the distribution's), as if this one were not there."""
    from importlib.machinery import PathFinder

    here = os.path.dirname(os.path.abspath(__file__))
    spec = PathFinder.find_spec("sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != here])
    if spec is not None and spec.loader is not None:
        module = sys.modules["sitecustomize"]
        spec.loader.exec_module(module)


try:
    _start()
except Exception as error:  # noqa: BLE001 - the program runs without llmobs rather than not at all
    print(f"llmobs run: llmobs not started: {type(error).__name__}: {error}", file=sys.stderr)
_run_shadowed()
