"""What a middleware records beyond the defaults, validated once when it is built."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .._config import ConfigError

DEFAULT_SKIP_PATHS = frozenset({"/health", "/healthz", "/livez", "/readyz", "/metrics"})


@dataclass(frozen=True)
class Options:
    """Paths not recorded at all, and the headers allow-listed onto server spans (never metrics)."""

    skip_paths: frozenset[str] = DEFAULT_SKIP_PATHS
    request_headers: tuple[str, ...] = ()
    response_headers: tuple[str, ...] = ()


def options(
    skip_paths: Iterable[str] | None = None, request_headers: Iterable[str] = (), response_headers: Iterable[str] = ()
) -> Options:
    """Check the middleware's keyword arguments; raises ``ConfigError`` with the fix."""
    skip = DEFAULT_SKIP_PATHS if skip_paths is None else frozenset(_strings(skip_paths, "skip_paths"))
    if any(not path.startswith("/") for path in skip):
        raise ConfigError("skip_paths must be exact URL paths starting with '/', e.g. ['/health']")
    return Options(skip, _headers(request_headers, "request_headers"), _headers(response_headers, "response_headers"))


def _headers(names: Iterable[str], option: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name.strip().lower() for name in _strings(names, option)))


def _strings(values: Iterable[str], option: str) -> list[str]:
    listed = None if isinstance(values, (str, bytes)) else list(values)
    if listed is None or not all(isinstance(v, str) and v.strip() for v in listed):
        raise ConfigError(f"{option} must be a list of non-empty strings, e.g. {option}=['x-request-id']")
    return listed
