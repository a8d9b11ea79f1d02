"""One registry host: transport, authentication, the API-version ping, error mapping.

Sessions are shared per (host, insecure) within a process, so the repositories
of one registry share connections and tokens.

Credentials go only to the registry's own origin (scheme, host and port: the one
that issued the challenge), as docker does: an upload ``Location`` or a redirect to
another host (blob storage, a CDN) is sent without ``Authorization``, and a 401
from such a host is never answered with credentials.  The token realm gets them
in :mod:`.auth`, as docker's token protocol requires.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import httpx

from . import credentials as creds_mod
from .auth import Authenticator
from .errors import AuthError, RegistryError, RegistryTimeout, RemoteNotFound, TLSFailure, TransferError
from .transport import Transport, debug, show_url

_USE_STORED = object()
_sessions: dict[tuple[str, bool], "Session"] = {}
_sessions_lock = threading.Lock()
# (registry, credentials, sessions made with them) for the current request only; see given_credentials
_given: contextvars.ContextVar[tuple[str, Any, dict[bool, "Session"]] | None] = contextvars.ContextVar(
    "given_credentials", default=None)
DOCKER_HUB_API = "registry-1.docker.io"
MAX_REDIRECTS = 10
_DEFAULT_PORTS = {"http": 80, "https": 443}


@contextmanager
def given_credentials(registry: str, credentials: Any) -> Iterator[None]:
    """Within the block (this thread's context), requests to ``registry`` use
    ``credentials`` (``None``: anonymous) instead of the stored ones; nothing is written
    anywhere, and the block's sessions (and tokens) are dropped at its end.  For a caller
    acting for someone else, as the Engine API service does with ``X-Registry-Auth``."""
    sessions: dict[bool, Session] = {}
    token = _given.set((registry, credentials, sessions))
    try:
        yield
    finally:
        _given.reset(token)
        for session in sessions.values():
            session.transport.close()


def api_host(registry: str) -> str:
    """The host serving the registry API (Docker Hub's is not ``docker.io``)."""
    return DOCKER_HUB_API if registry == "docker.io" else registry


class Session:
    """Requests to one registry host, authenticated for the scopes each request needs."""

    def __init__(self, registry: str, *, insecure: bool = False, credentials: Any = _USE_STORED):
        self.registry = registry
        self.transport = Transport(api_host(registry), insecure=insecure)
        if credentials is _USE_STORED:
            credentials = creds_mod.load(registry)
        self.auth = Authenticator(registry, self.transport, credentials)
        self._pinged = False
        self._ping_response: httpx.Response  # set with _pinged
        self._ping_lock = threading.Lock()

    @classmethod
    def shared(cls, registry: str, insecure: bool = False) -> "Session":
        """The process-wide session for ``registry`` with stored credentials (inside
        :func:`given_credentials` for it: a session of that block, with the given ones)."""
        given = _given.get()
        if given is not None and given[0] == registry:
            if insecure not in given[2]:
                given[2][insecure] = cls(registry, insecure=insecure, credentials=given[1])
            return given[2][insecure]
        with _sessions_lock:
            key = (registry, insecure)
            if key not in _sessions:
                _sessions[key] = cls(registry, insecure=insecure)
            return _sessions[key]

    @property
    def has_credentials(self) -> bool:
        return self.auth.credentials is not None

    def ping(self) -> httpx.Response:
        """``GET /v2/``: choose the scheme (HTTPS, or HTTP where allowed) and learn the auth challenge."""
        with self._ping_lock:
            if self._pinged:
                return self._ping_response
            response = self._ping_scheme()
            if response.status_code == 401:
                self.auth.learn(response)
            self._pinged, self._ping_response = True, response
            return response

    def _ping_scheme(self) -> httpx.Response:
        """Try each allowed scheme; the last one with retries.  A TLS registry answers 400 to plain HTTP;
        a host that times out is unresponsive whatever the scheme, so that ends the ping."""
        transport = self.transport
        failures: list[RegistryError] = []
        schemes = transport.schemes
        for n, scheme in enumerate(schemes):
            transport.scheme = scheme
            try:
                response = transport.send("GET", "/v2/", retry=n + 1 == len(schemes))
            except RegistryTimeout:
                raise
            except TransferError as err:
                debug(f"GET /v2/ over {scheme}: {err}")
                failures.append(err)
                continue
            if response.status_code in (200, 401):
                return response
            failures.append(RegistryError(f"{self.registry} does not speak the registry API v2 over {scheme} "
                                          f"(GET /v2/ answered {response.status_code})"))
        tls = [f for f in failures if isinstance(f, TLSFailure)]
        raise (tls or failures)[-1]

    def owns(self, url: httpx.URL) -> bool:
        """True when ``url`` is on the registry's own origin (the only one that gets credentials)."""
        return _origin(url) == _origin(httpx.URL(self.transport.url("/v2/")))

    def request(self, method: str, path: str, scopes: frozenset[str], *, headers: dict[str, str] | None = None,
                content: Any = None, stream: bool = False, retry: bool = True,
                follow_redirects: bool = False) -> httpx.Response:
        """Send a request, authenticated if it goes to the registry itself; on 401 from the registry
        refresh credentials and retry once (if replayable).  ``follow_redirects`` follows redirects
        of GET and HEAD, each hop authenticated by the same rule."""
        self.ping()
        url = httpx.URL(self.transport.url(path))
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, scopes, headers, content, stream, retry)
            if not (follow_redirects and method in ("GET", "HEAD") and response.has_redirect_location):
                return response
            response.close()
            url = url.join(response.headers["location"])
        raise RegistryError(f"{method} {show_url(str(url))}: more than {MAX_REDIRECTS} redirects; giving up")

    def _send(self, method: str, url: httpx.URL, scopes: frozenset[str], headers: dict[str, str] | None,
              content: Any, stream: bool, retry: bool) -> httpx.Response:
        replayable = content is None or isinstance(content, bytes)
        own = self.owns(url)
        for attempt in range(2):
            sent = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
            authorization = self.auth.header(scopes) if own else None
            if authorization:
                sent["Authorization"] = authorization
            response = self.transport.send(method, str(url), headers=sent, content=content, stream=stream,
                                           retry=retry and replayable)
            if (response.status_code == 401 and own and attempt == 0 and replayable
                    and self.auth.rejected(response, scopes)):
                response.close()
                continue
            return response
        raise AssertionError("unreachable")

    def fail(self, response: httpx.Response, what: str) -> RegistryError:
        """A one-line error for an unexpected answer (never with credentials in it)."""
        status = response.status_code
        code, message = _error_detail(response)
        detail = f" ({code}: {message})" if code else ""
        url = response.request.url
        if status in (401, 403) and not self.owns(url):
            return AuthError(f"{what}: {url.netloc.decode()}, where {self.registry} sent the request, refused it "
                             f"({status}){detail}; pybuild sends {self.registry}'s credentials only to "
                             f"{self.registry} itself")
        if status == 401:
            if self.has_credentials:
                return AuthError(f"{what}: {self.registry} rejected the stored credentials (401){detail}; "
                                 f"run 'pybuild login {self.registry}' again")
            return AuthError(f"{what}: {self.registry} requires authentication (401){detail}; "
                             f"run 'pybuild login {self.registry}'")
        if status == 403:
            return AuthError(f"{what}: access denied by {self.registry} (403){detail}; "
                             f"check that your account may access this repository")
        if status == 404:
            return RemoteNotFound(f"{what}: not found at {self.registry} (404){detail}; check the name and tag")
        return RegistryError(f"{what}: {self.registry} answered {status}{detail}")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _error_detail(response: httpx.Response) -> tuple[str, str]:
    """The first ``errors[]`` code and message of a registry error body."""
    try:
        if not response.is_closed:
            response.read()
        errors = response.json().get("errors") or []
        first = errors[0]
        return str(first.get("code", ""))[:64], str(first.get("message", ""))[:200]
    except (ValueError, AttributeError, IndexError, KeyError, httpx.HTTPError):
        return "", ""
