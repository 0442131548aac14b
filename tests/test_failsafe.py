"""The failure boundary: internal errors are logged once and swallowed; a signal handler's exception is not."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from llmobs import _failsafe
from llmobs._failsafe import guarded, internal_error


class Deadline(Exception):
    """What the application's SIGALRM handler raises."""


@pytest.fixture
def alarm() -> Iterator[None]:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise Deadline

    previous = signal.signal(signal.SIGALRM, on_alarm)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_an_internal_error_is_logged_once_per_place_and_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    @guarded(default=-1)
    def broken(x: int) -> int:
        return x // 0

    with caplog.at_level(logging.WARNING, logger="llmobs"):
        assert [broken(i) for i in range(3)] == [-1, -1, -1]
    assert len(caplog.records) == 1
    assert "broken" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None and caplog.records[0].exc_info[0] is ZeroDivisionError


def test_guarded_passes_results_through_and_keeps_the_name() -> None:
    @guarded(where="adding")
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    assert add(2, 3) == 5
    assert add.__name__ == "add" and add.__doc__ == "Adds."


def test_an_exception_raised_by_a_signal_handler_inside_a_guard_reaches_the_application(alarm: None) -> None:
    @guarded
    def bookkeeping() -> None:
        while True:  # llmobs busy when the deadline fires
            time.sleep(0.001)

    signal.setitimer(signal.ITIMER_REAL, 0.01)
    with pytest.raises(Deadline):
        bookkeeping()


class Watchdog:
    """A signal handler that is an object, as some servers install."""

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        raise Deadline


def test_a_handler_object_or_bound_method_is_recognised_too() -> None:
    previous = signal.signal(signal.SIGALRM, Watchdog())
    try:

        @guarded
        def bookkeeping() -> None:
            while True:
                time.sleep(0.001)

        signal.setitimer(signal.ITIMER_REAL, 0.01)
        with pytest.raises(Deadline):
            bookkeeping()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_internal_error_re_raises_only_what_came_from_a_signal_handler(alarm: None) -> None:
    caught = []
    for _ in range(2):
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.005)
            while True:
                time.sleep(0.001)
        except Exception as exc:  # noqa: BLE001 - what the boundary sees
            caught.append(exc)
            with pytest.raises(Deadline):
                internal_error("loop")
    assert [type(e) for e in caught] == [Deadline, Deadline]
    try:
        raise KeyError("ours")
    except Exception:  # noqa: BLE001 - an internal failure: swallowed
        internal_error("lookup")


def test_warnings_are_bounded_even_with_user_chosen_keys(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        for i in range(_failsafe.MAX_REPORTED + 10):
            _failsafe.warn_once(f"key{i}", "llmobs: %d", i)
    assert len(caplog.records) == _failsafe.MAX_REPORTED
    _failsafe.reset()
    with caplog.at_level(logging.WARNING, logger="llmobs"):
        _failsafe.warn_once("key0", "again")
    assert caplog.records[-1].getMessage() == "again"
