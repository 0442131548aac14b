"""The dependency probe: from this host's network position, every ``probe_interval``, each target's
DNS resolution, TCP connect and (for URLs) HTTP round trip, as ``llmobs.network.probe.duration`` by
``llmobs.probe.phase``, and ``llmobs.network.probe.up``.

Per host, not per process: only the holder of the service's host lock probes (N workers probing the
same targets would multiply both the load on them and the series). Each target has its own daemon
thread, so a hung target delays no other; each phase is bounded by ``probe_timeout``, and a probe
still running past its deadline (a DNS lookup cannot be timed out) reads as down with ``timeout``.
"""

from __future__ import annotations

import errno
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .. import semconv as names
from .._aggregation import GaugeSeries
from .._attributes import Attributes
from .._failsafe import guarded
from .._targets import Target
from .publish import SeriesSource
from .reading import extend

MAX_BODY = 65_536
PHASES = ("dns", "connect", "http")
T = TypeVar("T")


class ProbeFailed(Exception):
    """A phase failed; ``error`` is its ``error.type``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def error_type(exc: BaseException) -> str:
    """``timeout``, ``refused``, ``name_resolution``, ``tls``, ``reset``, ``protocol``, or the errno's
    name (``ehostunreach``)."""
    if isinstance(exc, socket.gaierror):
        return "name_resolution"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, http.client.HTTPException):
        return "protocol"
    code = getattr(exc, "errno", None)
    return errno.errorcode.get(code, "os_error").lower() if isinstance(code, int) else "os_error"


class Probe:
    """One target: probes on its own thread when woken, records into ``registry``."""

    def __init__(self, target: Target, registry: SeriesSource, timeout: float) -> None:
        self.target = target
        self._registry = registry
        self._timeout = timeout
        self.deadline = len(PHASES) * timeout + 0.5
        self._attributes: Attributes = extend(
            (),
            (names.PROBE_TARGET, target.name),
            (names.SERVER_ADDRESS, target.host),
            (names.SERVER_PORT, target.port),
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._started: float | None = None  # when the probe in progress began
        self._late = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"llmobs-probe-{target.name}", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def wake(self, now: float) -> None:
        """Start a probe, unless one is still running."""
        with self._lock:
            if self._started is None:
                self._started = now
                self._wake.set()

    def check(self, now: float) -> None:
        """A probe running past its deadline reads as down (``timeout``) until it ends."""
        with self._lock:
            late = self._started is not None and not self._late and now - self._started > self.deadline
            self._late = self._late or late
        if late:
            self._up(False)

    def withdraw(self) -> None:
        """This process no longer probes (it lost the host lock): stop exporting ``up``."""
        series = self._registry.series(names.PROBE_UP, self._attributes)
        if isinstance(series, GaugeSeries):
            series.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            self._probe()
            with self._lock:
                self._started, self._late = None, False

    @guarded(where="dependency probe")
    def _probe(self) -> None:
        try:
            self._phases()
        except ProbeFailed:
            self._up(False)
        else:
            self._up(True)

    def _phases(self) -> None:
        family, address = self._timed("dns", self._resolve)
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(self._timeout)
            self._timed("connect", lambda: sock.connect(address))
            if self.target.scheme is not None:
                self._timed("http", lambda: self._request(sock))

    def _timed(self, phase: str, step: Callable[[], T]) -> T:
        """Run one phase and record its duration; a failure raises ``ProbeFailed`` after recording."""
        if phase == "dns" and _literal(self.target.host):
            return step()
        start = time.perf_counter()
        try:
            result = step()
        except (OSError, http.client.HTTPException, ProbeFailed) as exc:
            error = exc.error if isinstance(exc, ProbeFailed) else error_type(exc)
            self._duration(phase, time.perf_counter() - start, error)
            raise ProbeFailed(error) from None
        self._duration(phase, time.perf_counter() - start, None)
        return result

    def _resolve(self) -> tuple[socket.AddressFamily, Any]:
        found = socket.getaddrinfo(self.target.host, self.target.port, type=socket.SOCK_STREAM)
        family, _, _, _, address = found[0]  # the first address only: one connect, one timeout
        return family, address

    def _request(self, sock: socket.socket) -> None:
        target = self.target
        connection = http.client.HTTPConnection(target.host, target.port, timeout=self._timeout)
        if target.scheme == "https":
            # TLS is part of the round trip; the socket is the connected one, so it is closed with it.
            context = ssl.create_default_context()
            connection.sock = context.wrap_socket(sock, server_hostname=target.host)
        else:
            connection.sock = sock
        try:
            connection.request("GET", target.path, headers={"User-Agent": "llmobs-probe", "Connection": "close"})
            response = connection.getresponse()
            response.read(MAX_BODY)
        finally:
            connection.close()
        if response.status >= 400:
            raise ProbeFailed(str(response.status))

    def _duration(self, phase: str, seconds: float, error: str | None) -> None:
        pairs = [(names.PROBE_PHASE, phase)] + ([(names.ERROR_TYPE, error)] if error else [])
        self._registry.series(names.PROBE_DURATION, extend(self._attributes, *pairs)).record(seconds)

    def _up(self, up: bool) -> None:
        self._registry.series(names.PROBE_UP, self._attributes).record(1.0 if up else 0.0)


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Prober:
    """The probes of every target, driven by the collector's interval ticks (``request``)."""

    def __init__(self, targets: Sequence[Target], registry: SeriesSource, interval: float, timeout: float) -> None:
        self._probes = [Probe(target, registry, timeout) for target in targets]
        self._interval = interval
        self._due = 0.0
        self._holding = False

    @property
    def threads(self) -> list[threading.Thread]:
        return [probe.thread for probe in self._probes]

    def request(self, holder: bool) -> None:
        now = time.monotonic()
        for probe in self._probes:
            probe.check(now)
        if not holder:
            if self._holding:
                for probe in self._probes:
                    probe.withdraw()
            self._holding, self._due = False, 0.0
            return
        self._holding = True
        if now >= self._due:
            self._due = now + self._interval
            for probe in self._probes:
                probe.wake(now)

    def stop(self) -> None:
        for probe in self._probes:
            probe.stop()
