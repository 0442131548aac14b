"""The one boundary between llmobs and the host application: internal failures are logged once
per place and swallowed, so that no exception from llmobs reaches user code."""

from __future__ import annotations

import logging

logger = logging.getLogger("llmobs")

_reported: set[str] = set()
MAX_REPORTED = 1000  # keys can carry user-chosen names: past this many, stay silent, never grow


def _first(key: str) -> bool:
    if key in _reported or len(_reported) >= MAX_REPORTED:
        return False
    _reported.add(key)
    return True


def warn_once(key: str, message: str, *args: object) -> None:
    """Log a warning the first time ``key`` is seen; later occurrences stay silent."""
    if _first(key):
        logger.warning(message, *args)


def report(where: str) -> None:
    """Call from an ``except`` block: logs the current exception once for ``where``."""
    if _first(where):
        logger.warning("llmobs: internal error in %s; telemetry for it is skipped", where, exc_info=True)
