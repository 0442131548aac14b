"""The inventory record: at start, one log record listing every installed distribution as a package URL
(``pkg:pypi/<name>@<version>``), the form SIEMs and OSV-based scanners match against known
vulnerabilities. Opt out with ``init(inventory=False)`` or ``LLMOBS_INVENTORY=false``."""

from __future__ import annotations

import re
from importlib import metadata

from opentelemetry._logs import SeverityNumber

from . import _logs
from ._failsafe import guarded
from .semconv import INVENTORY_COUNT, INVENTORY_EVENT


def purls() -> list[str]:
    """Every distribution ``importlib.metadata`` sees, as sorted unique package URLs (names normalized
    as PEP 503 and purl ask)."""
    found = set()
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"] if distribution.metadata is not None else None
        if name:
            normalized = re.sub(r"[-_.]+", "-", name).lower()
            found.add(f"pkg:pypi/{normalized}@{distribution.version}")
    return sorted(found)


@guarded(where="inventory record")
def emit_inventory() -> None:
    """One INFO record: the package URLs as its body (a list), their count as an attribute."""
    if _logs.emitter.logger is not None:
        listed = purls()
        _logs.emit(INVENTORY_EVENT, {INVENTORY_COUNT: len(listed)}, SeverityNumber.INFO, listed)
