"""Credentials a client gives for one request: ``X-Registry-Auth`` on pull and push, and
``POST /auth`` (what ``docker login`` asks the daemon).  They are used for that request
only: never written under the root, never logged, never put in a message."""

from __future__ import annotations

import base64
import binascii
import json
from contextlib import nullcontext
from typing import Any, ContextManager

from registry.remote.credentials import Credentials

from .http import ApiError, Request


def header_credentials(req: Request) -> Credentials | None:
    """The ``X-Registry-Auth`` header's credentials: base64url JSON with ``username`` and
    ``password``, or ``identitytoken``; ``None`` when absent or empty (``{}``)."""
    raw = req.handler.headers.get("X-Registry-Auth", "").strip()
    if not raw:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid X-Registry-Auth header: not base64url-encoded JSON") from None
    return _credentials(value, "X-Registry-Auth header")


def _credentials(value: Any, what: str) -> Credentials | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ApiError(400, f"invalid {what}: not a JSON object of strings")
    token = value.get("identitytoken") or value.get("IdentityToken") or ""
    user = value.get("username") or ""
    if token:
        return Credentials(username=user, identity_token=token)
    if user:
        return Credentials(username=user, password=value.get("password") or "")
    return None


def for_request(req: Request, registry: str) -> ContextManager[None]:
    """Use the header's credentials for ``registry`` within the block; without any, the
    service user's stored ones (as before the header was read)."""
    from registry.remote.session import given_credentials

    creds = header_credentials(req)
    return given_credentials(registry, creds) if creds is not None else nullcontext()


def auth(req: Request) -> dict[str, str]:
    """``POST /auth``: check the credentials with the registry, store nothing; docker's CLI
    keeps them and sends them back as ``X-Registry-Auth``."""
    from registry.remote.errors import RegistryError
    from registry.remote.login import normalize_registry, verify

    body = req.json()
    creds = _credentials({k: v for k, v in body.items() if isinstance(v, str)} if isinstance(body, dict) else None,
                         "login body")
    server = normalize_registry(str(body.get("serveraddress") or "docker.io"))
    if creds is None or not creds.password:
        raise ApiError(400, "login needs a username and a password")
    try:
        kept = verify(server, creds.username, creds.password)
    except RegistryError as err:
        raise ApiError(401, str(err)) from None
    return {"Status": "Login Succeeded", "IdentityToken": kept.identity_token}


ROUTES = [
    ("POST", r"/auth", auth),
]
