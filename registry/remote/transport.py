"""The HTTP layer: one httpx client per registry host, TLS trust, retries.

TLS is the default.  Trust comes from the system store (OpenSSL's default paths,
which honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``) plus ``ca.crt``/``*.crt`` in the
registry's folder of a docker-style certs dir (``$PYBUILD_CERTS_D``, else
``/etc/docker/certs.d`` and ``/etc/containers/certs.d``), where ``client.cert`` +
``client.key`` pairs are also used as client certificates.

Plain HTTP is a fallback only for loopback registries and for hosts the user
marks insecure (``--insecure`` or ``PYBUILD_INSECURE_REGISTRIES=host:port,...``);
an insecure host also skips certificate verification, as docker does.

Requests that can be replayed are retried with exponential backoff on connection
errors, timeouts and 408/429/5xx answers (``Retry-After`` honoured), within a bound
on attempts and on the time since the first attempt.  Every connection enforces the
connect, stall and minimum-speed limits of :mod:`.deadlines`.
"""

from __future__ import annotations

import email.utils
import os
import random
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx

from .deadlines import Deadlines, metered_transport
from .errors import RegistryTimeout, TLSFailure, TransferError

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
DEFAULT_CERTS_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: ``attempts`` in all, none once ``budget`` seconds have passed
    since the first attempt (so timeouts that each take a while do not add up without bound)."""

    attempts: int = 5
    backoff: float = 0.25
    max_delay: float = 10.0
    budget: float = 60.0

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """Defaults, overridable with ``PYBUILD_REGISTRY_RETRIES`` (attempts) and ``PYBUILD_REGISTRY_BACKOFF`` (s)."""
        return cls(attempts=max(1, int(os.environ.get("PYBUILD_REGISTRY_RETRIES", cls.attempts))),
                   backoff=float(os.environ.get("PYBUILD_REGISTRY_BACKOFF", cls.backoff)))

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``Retry-After`` wins when given)."""
        if response is not None:
            after = retry_after(response.headers.get("retry-after"))
            if after is not None:
                return min(after, self.max_delay * 3)
        base = min(self.max_delay, self.backoff * (2 ** attempt))
        return base * (0.75 + random.random() / 2)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delay seconds or an HTTP date (seconds from ``now``, the
    epoch time, by default the clock's)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_local(host: str) -> bool:
    """True for loopback registries (``localhost``, ``127.0.0.1``, ``[::1]``, any port)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in _LOCAL_HOSTS or name.startswith("127.")


def insecure_registries() -> set[str]:
    """Hosts listed in ``PYBUILD_INSECURE_REGISTRIES`` (comma or space separated)."""
    text = os.environ.get("PYBUILD_INSECURE_REGISTRIES", "")
    return {h.strip() for h in text.replace(",", " ").split() if h.strip()}


def certs_dirs() -> list[Path]:
    """The docker-style certs dirs to search, ``$PYBUILD_CERTS_D`` first (``:``-separated)."""
    env = os.environ.get("PYBUILD_CERTS_D")
    return [Path(p) for p in (env.split(":") if env else DEFAULT_CERTS_DIRS) if p]


def ssl_context(host: str, verify: bool = True) -> ssl.SSLContext:
    """An SSL context for ``host``: system trust (OpenSSL's defaults, which honour ``SSL_CERT_FILE``
    and ``SSL_CERT_DIR``) and the host's certs.d folder."""
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    for base in certs_dirs():
        folder = base / host
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.suffix == ".crt" and verify:
                ctx.load_verify_locations(cafile=str(entry))
            elif entry.suffix == ".cert":
                key = entry.with_suffix(".key")
                if not key.exists():
                    raise TransferError(f"client certificate {entry} has no matching {key.name}")
                ctx.load_cert_chain(str(entry), str(key))
    return ctx


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind an httpx exception, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def describe(exc: BaseException) -> str:
    """A short text for a transport exception (its type when it carries no message)."""
    return str(exc) or type(exc).__name__


def debug(message: str) -> None:
    """One line on stderr when ``--debug`` is on (never headers, never credentials)."""
    if os.environ.get("PYBUILD_DEBUG"):
        print(f"pybuild: debug: {message}", file=sys.stderr)


class _LazyTransport(httpx.BaseTransport):
    """Builds the real transport on first use: the TLS context (system trust store) costs
    tens of milliseconds and plain-HTTP registries never need it."""

    def __init__(self, factory: Callable[[], httpx.BaseTransport]):
        self._factory = factory
        self._inner: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._inner is None:
                self._inner = self._factory()
        return self._inner.handle_request(request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


class Transport:
    """An httpx client bound to one registry host, with its scheme policy and retries."""

    def __init__(self, host: str, *, insecure: bool = False, retry: RetryPolicy | None = None):
        self.host = host
        self.insecure = insecure or host in insecure_registries()
        self.allow_http = self.insecure or is_local(host)
        self.retry = retry or RetryPolicy.from_env()
        self.deadlines = Deadlines.from_env()
        self.scheme = "https"
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        tls = _LazyTransport(lambda: metered_transport(ssl_context(host, verify=not self.insecure), limits,
                                                       self.deadlines))
        self.client = httpx.Client(
            transport=metered_transport(None, limits, self.deadlines),  # plain HTTP; no TLS context built
            mounts={"https://": tls},
            timeout=self.deadlines.httpx_timeout(),
            headers={"User-Agent": "pybuild/0.1"},
            trust_env=False,
        )

    @property
    def schemes(self) -> list[str]:
        """Schemes to try, in order: HTTP first for loopback (no TLS set-up cost), HTTPS only elsewhere
        unless the host is marked insecure."""
        if is_local(self.host):
            return ["http", "https"]
        return ["https", "http"] if self.allow_http else ["https"]

    def url(self, path: str) -> str:
        """An absolute URL for an API path, or ``path`` itself when already absolute."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.scheme}://{self.host}{path}"

    def close(self) -> None:
        self.client.close()

    def send(self, method: str, url: str, *, headers: dict[str, str] | None = None, content: Any = None,
             stream: bool = False, retry: bool = True) -> httpx.Response:
        """Send one request; replayable ones are retried on connection errors and 408/429/5xx.

        With ``stream`` the body is left unread (the caller closes the response).  Redirects are
        not followed here: :class:`~.session.Session` follows them, deciding per hop who gets credentials.
        """
        url = self.url(url)
        attempts = self.retry.attempts if retry else 1
        started = time.monotonic()
        for attempt in range(attempts):
            request = self.client.build_request(method, url, headers=headers, content=content)
            try:
                response = self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                failure = tls_failure(exc)
                if failure is not None:
                    raise TLSFailure(f"TLS with {self.host} failed: {failure.reason or failure}; if the registry uses "
                                     f"a private CA, put it in {certs_dirs()[0]}/{self.host}/ca.crt "
                                     f"(or use --insecure)") from None
                if _unknown_host(exc):
                    raise TransferError(f"cannot resolve registry host {self.host!r}: {describe(exc)}; "
                                        "check the image name's registry part and your network/DNS") from None
                error = RegistryTimeout if isinstance(exc, httpx.TimeoutException) else TransferError
                if attempt + 1 >= attempts:
                    raise error(f"{method} {show_url(url)} failed: {describe(exc)}"
                                f"{f' (after {attempts} attempts)' if attempts > 1 else ''}") from None
                delay = self.retry.delay(attempt)
                if time.monotonic() - started + delay > self.retry.budget:
                    raise error(f"{method} {show_url(url)} failed: {describe(exc)} (gave up after "
                                f"{attempt + 1} attempts in {time.monotonic() - started:.0f} s)") from None
                debug(f"{method} {show_url(url)}: {type(exc).__name__}; retrying in {delay:.2f}s")
            else:
                debug(f"{method} {show_url(url)} -> {response.status_code}")
                if response.status_code not in RETRY_STATUSES or attempt + 1 >= attempts:
                    return response
                delay = self.retry.delay(attempt, response)
                if time.monotonic() - started + delay > self.retry.budget:
                    return response
                debug(f"{method} {show_url(url)}: {response.status_code}; retrying in {delay:.2f}s")
                response.close()
            time.sleep(delay)
        raise AssertionError("unreachable")


def _unknown_host(exc: BaseException) -> bool:
    """True when a connection failed because the host name does not resolve (retrying will not help)."""
    import socket

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror) and seen.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def show_url(url: str) -> str:
    """A URL for messages: without its query (upload state and the like)."""
    return url.split("?", 1)[0]
