"""Dependency probe targets (``LLMOBS_PROBE_TARGETS``), parsed at ``init`` so that a malformed one
fails there: ``host:port`` (TCP connect) or an ``http://`` / ``https://`` URL (connect, then a GET)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_TARGETS = 64
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")


@dataclass(frozen=True)
class Target:
    """One target. ``name`` is what metrics carry: the URL without user info, query or fragment."""

    name: str
    host: str
    port: int
    scheme: str | None = None
    """``http`` or ``https`` for a URL; None for a plain TCP target."""
    path: str = "/"
    """The request's path and query (the query is sent, never exported)."""


def parse_target(text: str) -> Target:
    """One target; raises ``ValueError`` with what is wrong and an example."""
    text = text.strip()
    if "://" in text:
        return _url(text)
    host, colon, port = text.rpartition(":")
    if not colon or not _HOST.fullmatch(host) or not _port(port):
        raise ValueError(f"probe target {text!r} must be host:port (e.g. db:5432, [::1]:6379) or an http(s):// URL")
    return Target(text, host.strip("[]"), int(port))


def _port(text: str) -> bool:
    return text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535


def _url(text: str) -> Target:
    example = "e.g. https://vectors:8443/health"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"probe target URL {_shown(text)!r} has a bad port; {example}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"probe target URL {_shown(text)!r} must start with http:// or https://; {example}")
    host = parts.hostname
    netloc = parts.netloc.rpartition("@")[2]
    if not host or not _HOST.fullmatch(netloc.rpartition(":")[0] if parts.port else netloc):
        raise ValueError(f"probe target URL {_shown(text)!r} has no valid host; {example}")
    if port == 0:
        raise ValueError(f"probe target URL {_shown(text)!r} has port 0; {example}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    name = f"{parts.scheme}://{netloc}{parts.path}"
    return Target(name, host, port or (443 if parts.scheme == "https" else 80), parts.scheme, path)


def _shown(text: str) -> str:
    """A URL as an error message may show it: no password, no query."""
    text = text.split("?", 1)[0].split("#", 1)[0]
    return re.sub(r"//[^/@]*@", "//***@", text)


def parse_targets(raw: str) -> tuple[Target, ...]:
    """Comma-separated targets, duplicates dropped; raises ``ValueError``."""
    parsed = tuple(dict.fromkeys(parse_target(part) for part in raw.split(",") if part.strip()))
    if len(parsed) > MAX_TARGETS:
        raise ValueError(f"at most {MAX_TARGETS} probe targets, got {len(parsed)}")
    return parsed
