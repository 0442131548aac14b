"""A request deadline, as servers' users set one: a SIGALRM handler that raises in whatever runs."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


class Deadline(Exception):
    """What the deadline's signal handler raises: the application's exception, never llmobs's."""


@contextmanager
def deadline() -> Iterator[Callable[[], None]]:
    """Install the handler for the block; calling the value it gives fires the signal at that point."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise Deadline

    previous = signal.signal(signal.SIGALRM, expire)
    try:
        yield lambda: signal.raise_signal(signal.SIGALRM)
    finally:
        signal.signal(signal.SIGALRM, previous)
