"""Run a callback right after a module is first imported (how ``llmobs run`` instruments
transformers only in programs that use it), with one meta-path finder that leaves once it fired.
A few lines rather than wrapt's post-import hooks: wrapt is no dependency of llmobs's core."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

from ._failsafe import guarded


def when_imported(name: str, callback: Callable[[], object]) -> None:
    """Call ``callback()`` once module ``name`` has been imported (now, if it already is). A failing
    callback is logged once; the import itself goes on unchanged."""
    if name in sys.modules:
        guarded(where=f"after importing {name}")(callback)()
    else:
        sys.meta_path.insert(0, _AfterImport(name, callback))


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, callback: Callable[[], object]) -> None:
        self.name = name
        self.callback = guarded(where=f"after importing {name}")(callback)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,  # noqa: ARG002 - the finder protocol's arguments
        target: ModuleType | None = None,  # noqa: ARG002
    ) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # the real finders find it; this one is done either way
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute, callback = loader.exec_module, self.callback

        def exec_module(module: ModuleType) -> None:
            execute(module)
            callback()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
