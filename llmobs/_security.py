"""Security events from HTTP responses, for a SIEM: 401, 403, 429 and 413 by kind, and probes (a 404 that
matched no route). Each is counted in ``llmobs.security.events`` by kind, route and method (a probe's
route is the fixed ``_unmatched``, never the raw path) and, while the logs signal is on, logged with
ECS-style fields and the sanitized path. Principals are HMAC-SHA256 pseudonyms, never raw identities."""

from __future__ import annotations

import hashlib
import hmac
import re

from . import _lifecycle
from ._aggregation import Series
from ._attributes import AttributeValue, freeze
from ._failsafe import warn_once
from .semconv import (
    AUTHENTICATION_FAILURE,
    AUTHORIZATION_FAILURE,
    EVENT_CATEGORY,
    EVENT_OUTCOME,
    HTTP_METHOD,
    HTTP_ROUTE,
    HTTP_STATUS_CODE,
    PAYLOAD_TOO_LARGE,
    PROBE,
    RATE_LIMITED,
    SECURITY_EVENT,
    SECURITY_EVENTS,
    UNMATCHED_ROUTE,
    URL_PATH,
)

KINDS = {401: AUTHENTICATION_FAILURE, 403: AUTHORIZATION_FAILURE, 429: RATE_LIMITED, 413: PAYLOAD_TOO_LARGE}
CATEGORIES = {
    AUTHENTICATION_FAILURE: "authentication",
    AUTHORIZATION_FAILURE: "iam",
    RATE_LIMITED: "web",
    PAYLOAD_TOO_LARGE: "web",
    PROBE: "intrusion_detection",
}
"""ECS ``event.category`` of each kind."""
MAX_PATH_LENGTH = 256
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def kind_of(status: int, route: str | None) -> str | None:
    """The security event a response is, if any: a probe is a 404 with no matched route."""
    kind = KINDS.get(status)
    if kind is None and status == 404 and route is None:
        return PROBE
    return kind


def sanitized(path: str) -> str:
    """``path`` fit for a record: no query string, control and non-ASCII characters escaped, cut at
    ``MAX_PATH_LENGTH`` characters."""
    text = path.split("?", 1)[0].encode("ascii", "backslashreplace").decode("ascii")
    text = _UNPRINTABLE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    return text[:MAX_PATH_LENGTH]


def count(kind: str, route: str | None, method: str) -> None:
    """One event in ``llmobs.security.events`` (a scan of any number of paths stays one series)."""
    _series(kind, route or UNMATCHED_ROUTE, method).record(1)


def _series(kind: str, route: str, method: str) -> Series:
    attributes = freeze({SECURITY_EVENT: kind, HTTP_ROUTE: route, HTTP_METHOD: method})
    return _lifecycle.state.registry.series(SECURITY_EVENTS, attributes)


def attributes(kind: str, route: str | None, method: str, status: int, path: str) -> dict[str, AttributeValue]:
    """The fields of a security event record."""
    fields: dict[str, AttributeValue] = {
        SECURITY_EVENT: kind,
        EVENT_CATEGORY: CATEGORIES[kind],
        EVENT_OUTCOME: "failure",
        HTTP_METHOD: method,
        HTTP_STATUS_CODE: status,
        URL_PATH: sanitized(path),
    }
    if route is not None:
        fields[HTTP_ROUTE] = route
    return fields


def pseudonym(principal: object) -> str | None:
    """The principal's HMAC-SHA256 (32 hex digits) under the configured key; None without a principal,
    or without a key (one warning: a raw identity is never recorded)."""
    if not isinstance(principal, str) or not principal:
        return None
    settings = _lifecycle.state.settings
    key = settings.principal_key if settings is not None else None
    if key is None:
        warn_once(
            "principal:key",
            "llmobs: a middleware has a principal callable but no key is set; principals are not recorded "
            "(set LLMOBS_PRINCIPAL_KEY or init(principal_key=...) to a secret of 16+ characters)",
        )
        return None
    return hmac.new(key, principal.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]
