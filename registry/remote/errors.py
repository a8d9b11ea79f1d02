"""Errors of the registry client.  Messages never contain credentials."""

from __future__ import annotations

from ..errors import PybuildError


class RegistryError(PybuildError):
    """The registry answered with an error we cannot recover from."""


class AuthError(RegistryError):
    """Authentication failed (401) or access was denied (403)."""


class TransferError(RegistryError):
    """The connection failed or kept failing after the allowed retries."""


class RemoteNotFound(RegistryError):
    """A manifest, blob or repository does not exist at the registry (404)."""


class TLSFailure(TransferError):
    """The TLS handshake failed (untrusted certificate, or the peer does not speak TLS)."""


class RegistryTimeout(TransferError):
    """A connect, stall or minimum-speed limit was breached: the registry is unresponsive or too slow,
    so the operation is not started over (each attempt would take as long again)."""
