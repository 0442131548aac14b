"""The HTTP series one middleware records into, bound once per runtime generation and cached per
attribute set, so that a request costs a dict lookup instead of building and sorting attributes."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.util.http import sanitize_method

from .. import _lifecycle
from .. import semconv as names
from .._aggregation import Series
from .._attributes import Attributes, AttributeValue, freeze

Key = tuple[str, str, "str | None", "int | None", "str | None", "str | None"]
"""Method as sent, scheme, route template, status code, error.type, llmobs.end_reason."""

_STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def method_attribute(method: str) -> str:
    """``http.request.method``: a standard method as sent, anything else ``_OTHER`` (semantic conventions)."""
    return method if method in _STANDARD_METHODS else sanitize_method(method)


class Ended:
    """The series a finished request with one attribute set records into."""

    __slots__ = ("duration", "first_byte", "request_size", "response_size")

    def __init__(self, attributes: Attributes) -> None:
        registry = _lifecycle.state.registry
        self.duration = registry.series(names.HTTP_SERVER_DURATION, attributes)
        self.first_byte = registry.series(names.HTTP_SERVER_TIME_TO_FIRST_BYTE, attributes)
        self.request_size = registry.series(names.HTTP_SERVER_REQUEST_BODY_SIZE, attributes)
        self.response_size = registry.series(names.HTTP_SERVER_RESPONSE_BODY_SIZE, attributes)


class SeriesCache:
    """Series by raw request values, dropped whenever llmobs is started, stopped or forked.

    Each cache holds at most ``max_series`` entries: past that, lookups still work but build their
    attributes every time (and the registry counts them in its overflow series).
    """

    def __init__(self) -> None:
        self.generation = -1
        self.enabled = False
        self.tracer: trace.Tracer | None = None
        self._cap = 0
        self._active: dict[tuple[str, str], Series] = {}
        self._ended: dict[Key, Ended] = {}

    def refresh(self) -> None:
        """Re-bind after ``init``, ``shutdown`` or a fork; one comparison when nothing changed."""
        state = _lifecycle.state
        if self.generation != state.generation:
            self._active, self._ended = {}, {}
            self.tracer = state.tracer
            self.enabled = state.registry is not _lifecycle.DISABLED
            self._cap = state.registry.max_series
            self.generation = state.generation

    def active(self, method: str, scheme: str) -> Series:
        found = self._active.get((method, scheme))
        if found is None:
            attributes = freeze({names.HTTP_METHOD: method_attribute(method), names.URL_SCHEME: scheme})
            found = _lifecycle.state.registry.series(names.HTTP_SERVER_ACTIVE_REQUESTS, attributes)
            if len(self._active) < self._cap:
                self._active[(method, scheme)] = found
        return found

    def ended(self, key: Key) -> Ended:
        found = self._ended.get(key)
        if found is None:
            found = Ended(_attributes(key))
            if len(self._ended) < self._cap:
                self._ended[key] = found
        return found


def _attributes(key: Key) -> Attributes:
    method, scheme, route, status, error, reason = key
    pairs: dict[str, AttributeValue | None] = {
        names.HTTP_METHOD: method_attribute(method),
        names.URL_SCHEME: scheme,
        names.HTTP_ROUTE: route,
        names.HTTP_STATUS_CODE: status,
        names.ERROR_TYPE: error,
        names.END_REASON: reason,
    }
    return freeze({k: v for k, v in pairs.items() if v is not None})
