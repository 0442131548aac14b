"""The one place that tells a decorated target's shape (function, coroutine, generator or async
generator), so that every decorator picks its wrapper from the same answer, once, at decoration."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any


class Shape(Enum):
    """What calling a target gives: a result, a coroutine, a generator or an async generator."""

    FUNCTION = "function"
    COROUTINE = "coroutine"
    GENERATOR = "generator"
    ASYNC_GENERATOR = "async generator"


def shape_of(target: Any) -> Shape:
    """The shape of ``target``, looking through class and static methods, ``functools.partial`` and
    a callable object's ``__call__`` (an object with ``async def __call__`` is a coroutine)."""
    while True:
        if isinstance(target, (classmethod, staticmethod)):
            target = target.__func__
        elif isinstance(target, functools.partial):
            target = target.func
        elif not inspect.isroutine(target) and not isinstance(target, type) and callable(target):
            target = type(target).__call__
        else:
            break
    if inspect.isasyncgenfunction(target):
        return Shape.ASYNC_GENERATOR
    if inspect.isgeneratorfunction(target):
        return Shape.GENERATOR
    if inspect.iscoroutinefunction(target):
        return Shape.COROUTINE
    return Shape.FUNCTION


def wrap(target: Any, wrappers: Mapping[Shape, Callable[..., Any]], *args: Any) -> Any:
    """``wrappers[shape_of(target)](target, *args)``; a class or static method is unwrapped, and its
    wrapper wrapped again the same way, so that the decorator works above or below it."""
    if isinstance(target, (classmethod, staticmethod)):
        return type(target)(wrap(target.__func__, wrappers, *args))
    return wrappers[shape_of(target)](target, *args)
