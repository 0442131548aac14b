"""The local history: each export interval's points (this process's deltas, tagged with its instance)
appended to a SQLite file that ``llmobs report`` reads. Written from the export thread, never the
request path; several workers write to one file safely (WAL, a busy timeout, one transaction per
interval), and the sums over their rows are exact. Bounded by a retention period and a size cap.

A file that cannot be written (locked past the timeout, corrupt, read-only, a full disk, a directory
others may write to) costs one warning; the interval's deltas go out again, summed, with the next one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from typing_extensions import override

from ._failsafe import warn_once
from ._periodic import InProcessExporter
from .semconv import PROCESS_PID, SERVICE_INSTANCE_ID, SERVICE_NAME

SCHEMA_VERSION = 1
BUSY_TIMEOUT = 5.0  # seconds a writer waits for another worker's transaction
PRUNE_FRACTION = 0.1  # past the size cap, the oldest tenth of the time span goes at once

SCHEMA = """
CREATE TABLE IF NOT EXISTS intervals (
    id INTEGER PRIMARY KEY, service TEXT, instance TEXT NOT NULL, pid INTEGER,
    start REAL NOT NULL, end REAL NOT NULL);
CREATE INDEX IF NOT EXISTS intervals_by_end ON intervals(end);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, metric TEXT NOT NULL, attributes TEXT NOT NULL, kind TEXT NOT NULL,
    unit TEXT NOT NULL, bounds TEXT NOT NULL, UNIQUE (metric, attributes, bounds));
CREATE TABLE IF NOT EXISTS points (
    interval INTEGER NOT NULL, series INTEGER NOT NULL, value REAL, count INTEGER, min REAL, max REAL, buckets TEXT);
CREATE INDEX IF NOT EXISTS points_by_interval ON points(interval);
"""
"""``intervals``: one row per export of one process (unix seconds). ``series``: a metric, its attributes
(JSON), kind (histogram, counter, updown, gauge), unit and bucket bounds (JSON). ``points``: an
interval's delta per series: a histogram's ``value`` is its sum and ``buckets`` its counts (JSON, trailing
zeros left out), a counter's ``value`` its increase, a gauge's or up-down counter's its level. Series
are stored once, not per point: that halves the file."""

Series = tuple[str, str, str, str, str]
"""metric, attributes, kind, unit, bounds: a ``series`` row."""
Row = tuple[Series, float | None, int | None, float | None, float | None, str | None]
ORPHANS_EVERY = 360  # intervals (an hour at 10 s) between sweeps of series no point uses any more


class HistoryError(Exception):
    """The history file cannot be used; the message says why and what to do."""


class HistoryExporter(InProcessExporter):
    """Appends each export (delta points) to the history file at ``path``."""

    def __init__(self, path: str, retention: float, max_bytes: int) -> None:
        super().__init__()
        self.path, self.retention, self.max_bytes = path, retention, max_bytes
        self._last = time.time()

    @override
    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        now = time.time()
        try:
            write(self.path, metrics_data, self._last, now, self.retention, self.max_bytes)
        except (sqlite3.Error, OSError, HistoryError) as exc:
            warn_once(
                f"history:{self.path}",
                "llmobs: the history %s cannot be written (%s); the summary and exports go on. Set "
                "LLMOBS_HISTORY to a file in a directory only you can write to, or LLMOBS_HISTORY=off",
                self.path,
                exc,
            )
            return MetricExportResult.FAILURE
        self._last = now
        return MetricExportResult.SUCCESS


def write(path: str, data: MetricsData, start: float, end: float, retention: float, max_bytes: int) -> None:
    """One interval of ``data`` into the history, in one transaction, then prune it to its bounds."""
    connection = connect(path)
    try:
        connection.execute("BEGIN IMMEDIATE")
        for resource_metrics in data.resource_metrics:
            rows = list(_rows(resource_metrics.scope_metrics))
            if rows:
                attrs = resource_metrics.resource.attributes
                interval = connection.execute(
                    "INSERT INTO intervals (service, instance, pid, start, end) VALUES (?, ?, ?, ?, ?)",
                    (
                        attrs.get(SERVICE_NAME),
                        str(attrs.get(SERVICE_INSTANCE_ID, "")),
                        attrs.get(PROCESS_PID),
                        start,
                        end,
                    ),
                ).lastrowid
                ids = _series_ids(connection, {row[0] for row in rows})
                connection.executemany(
                    "INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, ?)", [(interval, ids[s], *rest) for s, *rest in rows]
                )
                if interval is not None and interval % ORPHANS_EVERY == 0:
                    connection.execute("DELETE FROM series WHERE id NOT IN (SELECT series FROM points)")
        pruned = _prune(connection, end - retention, max_bytes)
        connection.execute("COMMIT")
        if pruned:
            connection.execute("PRAGMA incremental_vacuum").fetchall()
    finally:
        connection.close()


def connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the history at ``path``, created 0600 in a 0700 directory if missing; HistoryError
    when it is a link, not ours, in a directory others may write to, or of a newer schema."""
    directory = os.path.dirname(path)
    if not readonly:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    info = os.stat(directory)
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise HistoryError(f"its directory {directory} may be written by other users")
    flags = (os.O_RDONLY if readonly else os.O_RDWR | os.O_CREAT) | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if os.path.islink(path):
            raise HistoryError("it is a symbolic link; llmobs does not follow links") from None
        raise exc
    try:
        mode = os.fstat(fd)
        if not stat.S_ISREG(mode.st_mode) or mode.st_uid != os.geteuid():
            raise HistoryError("it is not a regular file of this user")
        if mode.st_mode & 0o077 and not readonly:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    uri = Path(path).as_uri() + ("?mode=ro" if readonly else "")
    connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        _prepare(connection, readonly)
    except BaseException:
        connection.close()
        raise
    return connection


def _prepare(connection: sqlite3.Connection, readonly: bool) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryError(f"it has schema version {version}, newer than this llmobs's {SCHEMA_VERSION}: upgrade")
    if version not in (0, SCHEMA_VERSION):
        raise HistoryError(f"it has schema version {version}, not this llmobs's {SCHEMA_VERSION}: move it away")
    if readonly:
        if version == 0:
            raise HistoryError("it holds no llmobs history yet")
        return
    if version == 0:
        connection.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table: pruning shrinks the file
        connection.execute("PRAGMA journal_mode = WAL")  # readers and the other workers' writers do not block
        connection.executescript(SCHEMA)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _series_ids(connection: sqlite3.Connection, series: set[Series]) -> dict[Series, int]:
    """The ids of ``series``, added if new (another worker may add the same at the same time: unique)."""
    connection.executemany(
        "INSERT OR IGNORE INTO series (metric, attributes, kind, unit, bounds) VALUES (?, ?, ?, ?, ?)", series
    )
    rows = connection.execute("SELECT id, metric, attributes, kind, unit, bounds FROM series")
    return {(metric, attrs, kind, unit, bounds): id_ for id_, metric, attrs, kind, unit, bounds in rows}


def _rows(scope_metrics: Any) -> Iterator[Row]:
    for scope in scope_metrics:
        for metric in scope.metrics:
            kind = _kind(metric.data)
            for point in metric.data.data_points:
                attrs = json.dumps(dict(sorted((point.attributes or {}).items())), ensure_ascii=False)
                if isinstance(point, HistogramDataPoint):
                    counts = list(point.bucket_counts)
                    while counts and not counts[-1]:
                        counts.pop()
                    series = (metric.name, attrs, kind, metric.unit, json.dumps(list(point.explicit_bounds)))
                    yield series, point.sum, point.count, point.min, point.max, json.dumps(counts)
                elif isinstance(point, NumberDataPoint):
                    yield (metric.name, attrs, kind, metric.unit, "[]"), float(point.value), None, None, None, None


def _kind(data: object) -> str:
    if isinstance(data, Histogram):
        return "histogram"
    if isinstance(data, Sum):
        return "counter" if data.is_monotonic else "updown"
    return "gauge" if isinstance(data, Gauge) else type(data).__name__


def _prune(connection: sqlite3.Connection, oldest: float, max_bytes: int) -> bool:
    """Drop intervals older than ``oldest``, then the oldest tenth of the span while the pages in use
    exceed ``max_bytes``; True when anything went."""
    pruned = _drop_before(connection, oldest)
    for _ in range(10):
        pages, free, size = (
            connection.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size")
        )
        if (pages - free) * size <= max_bytes:
            break
        first, last = connection.execute("SELECT min(end), max(end) FROM intervals").fetchone()
        if first is None or first == last:
            break
        pruned = _drop_before(connection, first + (last - first) * PRUNE_FRACTION + 1e-6) or pruned
    return pruned


def _drop_before(connection: sqlite3.Connection, end: float) -> bool:
    connection.execute("DELETE FROM points WHERE interval IN (SELECT id FROM intervals WHERE end < ?)", (end,))
    return connection.execute("DELETE FROM intervals WHERE end < ?", (end,)).rowcount > 0
