"""Every shape a decorator meets, for tests of monitor_inference and monitor_batch alike: the four call
shapes, each as a plain function, a method, a class method (decorated above or below), a static method,
a ``functools.partial`` and a callable object. Each body takes DELAY and returns (or yields) 1."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

DELAY = 0.02


def function(*args: Any) -> Any:
    time.sleep(DELAY)
    return args[-1]


async def coroutine(*args: Any) -> Any:
    await asyncio.sleep(DELAY)
    return args[-1]


def generator(*args: Any) -> Iterator[Any]:
    time.sleep(DELAY)
    yield args[-1]


async def async_generator(*args: Any) -> AsyncIterator[Any]:
    await asyncio.sleep(DELAY)
    yield args[-1]


BODIES: dict[str, Callable[..., Any]] = {
    "function": function,
    "coroutine": coroutine,
    "generator": generator,
    "async generator": async_generator,
}
FORMS = ["function", "method", "classmethod above", "classmethod below", "staticmethod", "partial", "callable object"]
CASES = [(shape, form) for shape in BODIES for form in FORMS]
IDS = [f"{shape}-{form}" for shape, form in CASES]

Decorator = Callable[[Any], Any]


def decorated(decorator: Decorator, shape: str, form: str) -> Callable[..., Any]:
    """The decorated target as a caller reaches it (a bound method, a class attribute, the wrapper);
    calling it with 1 gives 1 once driven."""
    body = BODIES[shape]
    if form == "function":
        return decorator(body)  # type: ignore[no-any-return]
    if form == "partial":
        return decorator(functools.partial(body, 0))  # type: ignore[no-any-return]
    if form == "callable object":
        model: Callable[[], Any] = type("Model", (), {"__call__": body})
        return decorator(model())  # type: ignore[no-any-return]
    members: dict[str, Callable[[], Any]] = {
        "method": lambda: decorator(body),
        "classmethod above": lambda: decorator(classmethod(body)),
        "classmethod below": lambda: classmethod(decorator(body)),
        "staticmethod": lambda: decorator(staticmethod(body)),
    }
    owner = type("Model", (), {"predict": members[form]()})
    found: Any = owner() if form == "method" else owner
    return found.predict  # type: ignore[no-any-return]


def drive(result: Any) -> Any:
    """Run what a call returned to its end: await a coroutine, exhaust a stream (its last item)."""
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if inspect.isgenerator(result):
        return list(result)[-1]
    if inspect.isasyncgen(result):
        return asyncio.run(_last(result))
    return result


async def _last(stream: AsyncIterator[Any]) -> Any:
    return [item async for item in stream][-1]


def truthful(target: Callable[..., Any], shape: str) -> bool:
    """``inspect`` tells the decorated target's shape as it tells the undecorated body's."""
    checks = {
        "function": lambda t: (
            not (inspect.iscoroutinefunction(t) or inspect.isgeneratorfunction(t) or inspect.isasyncgenfunction(t))
        ),
        "coroutine": inspect.iscoroutinefunction,
        "generator": inspect.isgeneratorfunction,
        "async generator": inspect.isasyncgenfunction,
    }
    return bool(checks[shape](target))
