"""Errors of signing and verification: one line that says what failed and what to do."""

from __future__ import annotations

from ..errors import PybuildError


class KeyFileError(PybuildError):
    """A key file is missing, malformed, of the wrong kind, or its passphrase is wrong."""


class VerificationFailed(PybuildError):
    """No signature of an image is valid for the given key and identity."""


class PolicyRejected(PybuildError):
    """The verification policy does not allow this image."""


class PolicyInvalid(PybuildError):
    """A ``policy.json`` that cannot be read or uses something we do not support."""
