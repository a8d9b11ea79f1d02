"""Deadlines on registry I/O: a connect timeout, a stall timeout and a minimum speed.

A registry that accepts a connection and never answers, or answers one byte at a
time, must not hold a command for ever.  Every socket the registry client opens
goes through :class:`MeteredStream`, which enforces, per connection:

- ``connect``: seconds to establish TCP (and TLS);
- ``stall``: seconds without a single byte moving, either way;
- ``min_speed`` over ``window``: once an answer has started (or while a request body
  is sent), fewer than ``min_speed`` bytes per second over ``window`` seconds of
  waiting on the network is a failure.  Only time spent blocked on the socket
  counts, so a consumer that reads slowly (a busy disk) is never blamed, and the
  wait for the first byte of an answer (the server thinking) is the stall timeout's.

A breach raises httpcore's timeout exceptions with a message naming the peer and
the limit, so httpx and the retry logic treat it as the timeout it is.
"""

from __future__ import annotations

import os
import ssl
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

import httpcore
import httpx

from ..errors import PybuildError

_SLICE = 64 * 1024


@dataclass(frozen=True)
class Deadlines:
    """The limits, in seconds and bytes per second."""

    connect: float = 15.0
    stall: float = 30.0
    min_speed: float = 1024.0
    window: float = 60.0

    ENV: ClassVar[dict[str, str]] = {"connect": "PYBUILD_REGISTRY_CONNECT_TIMEOUT", "stall": "PYBUILD_REGISTRY_STALL_TIMEOUT",
           "min_speed": "PYBUILD_REGISTRY_MIN_SPEED", "window": "PYBUILD_REGISTRY_SPEED_WINDOW"}

    @classmethod
    def from_env(cls) -> "Deadlines":
        """Defaults, each overridable by its ``PYBUILD_REGISTRY_*`` variable (see :attr:`ENV`)."""
        values: dict[str, float] = {}
        for name, var in cls.ENV.items():
            text = os.environ.get(var)
            if text is None:
                continue
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if not value > 0:
                raise PybuildError(f"{var}={text!r} is not a positive number")
            values[name] = value
        return cls(**values)

    def httpx_timeout(self) -> httpx.Timeout:
        """httpx's own per-operation timeouts (the pool wait is ours, not the network's)."""
        return httpx.Timeout(connect=self.connect, read=self.stall, write=self.stall, pool=None)


def _secs(value: float) -> str:
    return f"{value:g} s"


class MeteredStream(httpcore.NetworkStream):
    """A network stream that enforces :class:`Deadlines` (see the module docstring)."""

    def __init__(self, inner: httpcore.NetworkStream, peer: str, limits: Deadlines):
        self._inner, self._peer, self._limits = inner, peer, limits
        self._direction = ""
        self._moved = 0
        self._waited = 0.0

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        started = time.monotonic()
        try:
            data = self._inner.read(max_bytes, self._limits.stall)
        except httpcore.ReadTimeout:
            raise httpcore.ReadTimeout(f"{self._peer} sent nothing for {_secs(self._limits.stall)} (stall timeout, "
                                       f"{Deadlines.ENV['stall']})") from None
        self._meter("read", len(data), time.monotonic() - started)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        for start in range(0, len(view), _SLICE):
            piece = view[start:start + _SLICE]  # slices, so the speed is measured within a big write
            started = time.monotonic()
            try:
                self._inner.write(piece, self._limits.stall)  # type: ignore[arg-type]  # sockets take views
            except httpcore.WriteTimeout:
                raise httpcore.WriteTimeout(f"{self._peer} accepted nothing for {_secs(self._limits.stall)} "
                                            f"(stall timeout, {Deadlines.ENV['stall']})") from None
            self._meter("write", len(piece), time.monotonic() - started)

    def _meter(self, direction: str, nbytes: int, waited: float) -> None:
        if direction != self._direction:
            # A request starts, or its answer does: a new measurement.  The wait for an answer's
            # first byte is the server at work, bounded by the stall timeout alone.
            self._direction, self._moved, self._waited = direction, 0, 0.0
            if direction == "read":
                waited = 0.0
        self._moved += nbytes
        self._waited += waited
        limits = self._limits
        if self._waited < limits.window:
            return
        if self._moved < limits.min_speed * self._waited:
            error = httpcore.ReadTimeout if direction == "read" else httpcore.WriteTimeout
            verb = "sent" if direction == "read" else "accepted"
            raise error(f"{self._peer} {verb} {self._moved} bytes in {self._waited:.1f} s, below the minimum speed "
                        f"of {limits.min_speed:g} bytes/s ({Deadlines.ENV['min_speed']})")
        self._moved, self._waited = 0, 0.0

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        try:
            inner = self._inner.start_tls(ssl_context, server_hostname, self._limits.connect)
        except httpcore.ConnectTimeout:
            raise httpcore.ConnectTimeout(f"TLS handshake with {self._peer} took longer than "
                                          f"{_secs(self._limits.connect)} ({Deadlines.ENV['connect']})") from None
        return MeteredStream(inner, self._peer, self._limits)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class MeteredBackend(httpcore.NetworkBackend):
    """httpcore's socket backend with every connection wrapped in a :class:`MeteredStream`."""

    def __init__(self, limits: Deadlines):
        self._limits = limits
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        peer = f"{host}:{port}"
        try:
            stream = self._inner.connect_tcp(host, port, self._limits.connect, local_address, socket_options)
        except httpcore.ConnectTimeout:
            raise httpcore.ConnectTimeout(f"connecting to {peer} took longer than {_secs(self._limits.connect)} "
                                          f"(connect timeout, {Deadlines.ENV['connect']})") from None
        return MeteredStream(stream, peer, self._limits)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("registries are reached over TCP")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def metered_transport(ssl_context: ssl.SSLContext | None, limits: httpx.Limits,
                      deadlines: Deadlines) -> httpx.HTTPTransport:
    """An httpx transport whose connections enforce ``deadlines`` (``ssl_context``: ``None`` for plain
    HTTP).  httpx has no public hook for httpcore's network backend, so the transport's connection
    pool is replaced by one built with ours."""
    transport = httpx.HTTPTransport(verify=ssl_context or False, limits=limits)
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool):
        raise RuntimeError("this httpx version has no replaceable connection pool; pin httpx<0.29")
    pool.close()
    transport._pool = httpcore.ConnectionPool(  # type: ignore[attr-defined]
        ssl_context=ssl_context, max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=MeteredBackend(deadlines))
    return transport
