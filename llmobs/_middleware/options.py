"""How a middleware is set up: the keyword arguments all four entry points take, validated once
when it is built, and the rule that an app is instrumented once."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

from .._config import ConfigError
from .._failsafe import warn_once

DEFAULT_SKIP_PATHS = frozenset({"/health", "/healthz", "/livez", "/readyz", "/metrics"})


class Keywords(TypedDict, total=False):
    """The keyword arguments of ``ASGIMiddleware``, ``WSGIMiddleware``, ``instrument_fastapi`` and
    ``instrument_flask`` (docs/middleware.md), spelled here once."""

    skip_paths: Iterable[str] | None
    """Exact paths not recorded at all; default ``DEFAULT_SKIP_PATHS`` (health checks, /metrics)."""
    request_headers: Iterable[str]
    """Request header names allow-listed onto the server span (never metrics)."""
    response_headers: Iterable[str]
    """Response header names allow-listed onto the server span (never metrics)."""
    principal: Callable[[Any], str | None] | None
    """Who made the request, from the ASGI scope or WSGI environ: one access record per request, the
    principal as an HMAC pseudonym (docs/security.md)."""
    client_address: bool
    """Put the client's address on access and security records (off: it is personal data)."""


@dataclass(frozen=True)
class Options:
    """``Keywords`` once checked: paths as a set, header names lower-cased without duplicates."""

    skip_paths: frozenset[str] = DEFAULT_SKIP_PATHS
    request_headers: tuple[str, ...] = ()
    response_headers: tuple[str, ...] = ()
    principal: Callable[[Any], str | None] | None = None
    client_address: bool = False


def options(given: Keywords) -> Options:
    """Check a middleware's keyword arguments; raises ``ConfigError`` with the fix."""
    unknown = sorted(set(given) - set(Keywords.__annotations__))
    if unknown:
        raise ConfigError(
            f"unknown middleware option {unknown[0]!r}; the options are {sorted(Keywords.__annotations__)}"
        )
    paths = given.get("skip_paths")
    skip = DEFAULT_SKIP_PATHS if paths is None else frozenset(_strings(paths, "skip_paths"))
    if any(not path.startswith("/") for path in skip):
        raise ConfigError("skip_paths must be exact URL paths starting with '/', e.g. ['/health']")
    principal = given.get("principal")
    if principal is not None and not callable(principal):
        raise ConfigError("principal must be a function of the request (ASGI scope or WSGI environ) -> str | None")
    client_address = given.get("client_address", False)
    if not isinstance(client_address, bool):
        raise ConfigError("client_address must be True or False")
    return Options(
        skip,
        _headers(given.get("request_headers", ()), "request_headers"),
        _headers(given.get("response_headers", ()), "response_headers"),
        principal,
        client_address,
    )


def _headers(names: Iterable[str], option: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name.strip().lower() for name in _strings(names, option)))


def _strings(values: Iterable[str], option: str) -> list[str]:
    listed = None if isinstance(values, (str, bytes)) else list(values)
    if listed is None or not all(isinstance(v, str) and v.strip() for v in listed):
        raise ConfigError(f"{option} must be a list of non-empty strings, e.g. {option}=['x-request-id']")
    return listed


_instrumented: weakref.WeakSet[object] = weakref.WeakSet()


def first_instrumentation(app: object, function: str) -> bool:
    """True the first time ``function`` (``instrument_fastapi``, ``instrument_flask``) sees ``app``;
    after that it warns once and the caller leaves the app as it is."""
    if app in _instrumented:
        warn_once(f"{function} twice", "llmobs: %s() was already called on this app", function)
        return False
    _instrumented.add(app)
    return True
