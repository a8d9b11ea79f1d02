"""``login``: verify credentials with the registry, then save them (helper or config.json, 0600).

With a token server that hands out refresh tokens (``offline_token=true``), the
refresh token is saved as ``identitytoken`` instead of the password, as docker does.
"""

from __future__ import annotations

from pathlib import Path

from ..reference import DEFAULT_REGISTRY
from . import credentials
from .credentials import Credentials
from .errors import AuthError
from .session import Session

_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "docker.io"}


def normalize_registry(text: str) -> str:
    """``https://host:port/v1/`` -> ``host:port``; Docker Hub's aliases -> ``docker.io``."""
    host = text.split("://", 1)[-1].split("/", 1)[0].strip()
    return DEFAULT_REGISTRY if host in _HUB_ALIASES else host


def login(registry: str, username: str, password: str, *, insecure: bool = False) -> Path:
    """Check ``username``/``password`` against ``registry`` and store them; return where."""
    return credentials.store(registry, verify(registry, username, password, insecure=insecure))


def verify(registry: str, username: str, password: str, *, insecure: bool = False) -> Credentials:
    """Check ``username``/``password`` against ``registry`` without storing anything;
    return what to keep (the refresh token in place of the password where one is given)."""
    creds = Credentials(username=username, password=password)
    session = Session(registry, insecure=insecure, credentials=creds)
    try:
        session.ping()
        challenge = session.auth.challenge
        if challenge is not None and challenge.scheme == "bearer":
            session.auth.token(frozenset(), offline=True)
            if session.auth.refresh_token:
                creds = Credentials(username=username, identity_token=session.auth.refresh_token)
        elif challenge is not None:
            response = session.request("GET", "/v2/", frozenset())
            if response.status_code != 200:
                raise AuthError(f"answered {response.status_code}")
    except AuthError:
        raise AuthError(f"login to {registry} failed: the registry refused this username and password; "
                        f"check them and try again") from None
    finally:
        session.transport.close()
    return creds
