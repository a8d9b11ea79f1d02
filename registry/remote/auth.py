"""Registry authentication: ``WWW-Authenticate`` challenges, basic auth and bearer tokens.

The bearer flow (docker's token protocol): a 401 names a ``realm``, ``service``
and maybe a ``scope``; we ask the realm for a token for the scopes a request needs
(``repository:NAME:pull,push``), with basic credentials, an identity (refresh)
token, or anonymously; tokens are cached per scope set and refreshed before they
expire or when the registry rejects them.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

from .credentials import Credentials
from .errors import AuthError, RegistryError
from .transport import Transport

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TOKEN}))\s*(?:,|$)")
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")
_REFRESH_MARGIN = 10.0
DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: scheme (lower-case) and parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header (RFC 7235) into its challenges."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        if header[pos] in ", \t":
            pos += 1
            continue
        match = _SCHEME.match(header, pos)
        if not match:
            break
        scheme, pos = match.group(1).lower(), match.end()
        params: dict[str, str] = {}
        while pos < len(header):
            param = _PARAM.match(header, pos)
            if not param:
                break
            value = param.group(2)
            value = re.sub(r"\\(.)", r"\1", value) if value is not None else param.group(3)
            params[param.group(1).lower()] = value
            pos = param.end()
        out.append(Challenge(scheme, params))
    return out


@dataclass
class _Token:
    value: str
    expires: float


class Authenticator:
    """Adds ``Authorization`` to requests for one registry and reacts to 401 answers."""

    def __init__(self, registry: str, transport: Transport, credentials: Credentials | None):
        self.registry = registry
        self.transport = transport
        self.credentials = credentials
        self.challenge: Challenge | None = None
        self._tokens: dict[frozenset[str], _Token] = {}
        self._lock = threading.Lock()
        self.refresh_token: str | None = None

    def learn(self, response: httpx.Response) -> None:
        """Remember the challenge of a 401 answer (bearer preferred over basic)."""
        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        for scheme in ("bearer", "basic"):
            for challenge in challenges:
                if challenge.scheme == scheme:
                    self.challenge = challenge
                    return

    def header(self, scopes: frozenset[str]) -> str | None:
        """The ``Authorization`` value for a request needing ``scopes`` (``None``: anonymous)."""
        if self.challenge is None:
            return None
        if self.challenge.scheme == "basic":
            if self.credentials is None or not self.credentials.password:
                return None
            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if self.challenge.scheme == "bearer":
            return "Bearer " + self.token(scopes)
        return None

    def token(self, scopes: frozenset[str], *, offline: bool = False) -> str:
        """A bearer token for ``scopes`` (cached until shortly before it expires)."""
        with self._lock:
            cached = self._tokens.get(scopes)
            if cached and cached.expires - _REFRESH_MARGIN > time.monotonic():
                return cached.value
            token = self._fetch(scopes, offline)
            self._tokens[scopes] = token
            return token.value

    def rejected(self, response: httpx.Response, scopes: frozenset[str]) -> bool:
        """After a 401: drop the cached token and learn the new challenge; True if a retry may help."""
        had_challenge = self.challenge is not None
        self.learn(response)
        with self._lock:
            stale = self._tokens.pop(scopes, None)
        if self.challenge is None:
            return False
        if not had_challenge or stale is not None:
            return True
        return self.challenge.scheme == "bearer" and self.challenge.params.get("error") in ("invalid_token", "insufficient_scope")

    def _fetch(self, scopes: frozenset[str], offline: bool) -> _Token:
        assert self.challenge is not None
        params = self.challenge.params
        realm = params.get("realm")
        if not realm:
            raise AuthError(f"{self.registry} asked for a bearer token but named no token server (realm)")
        service = params.get("service", "")
        creds = self.credentials
        started = time.monotonic()
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "service": service,
                    "client_id": "pybuild", "scope": " ".join(sorted(scopes))}
            response = self.transport.send("POST", realm, content=urlencode(form).encode(),
                                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            query = [("service", service)] + [("scope", s) for s in sorted(scopes)]
            headers = {}
            if creds is not None and creds.password:
                headers["Authorization"] = "Basic " + base64.b64encode(
                    f"{creds.username}:{creds.password}".encode()).decode()
                if offline:
                    query += [("offline_token", "true"), ("client_id", "pybuild")]
            response = self.transport.send("GET", realm + ("&" if "?" in realm else "?") + urlencode(query),
                                           headers=headers)
        if response.status_code in (401, 403):
            who = "the stored credentials were rejected" if creds else "anonymous access is not allowed"
            raise AuthError(f"token server of {self.registry} refused access ({response.status_code}): {who}; "
                            f"run 'pybuild login {self.registry}'")
        if response.status_code != 200:
            raise RegistryError(f"token server of {self.registry} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise RegistryError(f"token server of {self.registry} sent a malformed answer") from None
        value = body.get("token") or body.get("access_token")
        if not value:
            raise RegistryError(f"token server of {self.registry} sent no token")
        if body.get("refresh_token"):
            self.refresh_token = body["refresh_token"]
        lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        return _Token(value, started + lifetime)
