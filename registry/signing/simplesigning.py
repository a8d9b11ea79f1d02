"""The payload a cosign signature signs: which image (by manifest digest) under which name.

Written as cosign writes it (Go's field order, no spaces, ``"optional": null`` unless
annotations are given); read strictly, as containers/image reads it: exactly the
known fields, the fixed ``type``, strings where strings belong.  A payload is
untrusted until its signature has been checked, and even then only these fields count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import VerificationFailed

TYPE = "cosign container image signature"


@dataclass(frozen=True)
class Payload:
    """The signed claim: ``docker_reference`` names ``digest``."""

    docker_reference: str
    digest: str
    optional: dict[str, Any] | None = None


def encode(payload: Payload) -> bytes:
    """The payload bytes, byte for byte as cosign produces them."""
    doc = {"critical": {"identity": {"docker-reference": payload.docker_reference},
                        "image": {"docker-manifest-digest": payload.digest},
                        "type": TYPE},
           "optional": payload.optional}
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(raw: bytes) -> Payload:
    """Parse a payload strictly; a :class:`VerificationFailed` says what is wrong with it."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise VerificationFailed("the signature payload is not JSON") from None
    _exact(doc, {"critical", "optional"}, "payload")
    critical = doc["critical"]
    _exact(critical, {"identity", "image", "type"}, "critical")
    if critical["type"] != TYPE:
        raise VerificationFailed(f"the signature payload has type {critical['type']!r}, not {TYPE!r}")
    _exact(critical["identity"], {"docker-reference"}, "critical.identity")
    _exact(critical["image"], {"docker-manifest-digest"}, "critical.image")
    reference, digest = critical["identity"]["docker-reference"], critical["image"]["docker-manifest-digest"]
    if not isinstance(reference, str) or not isinstance(digest, str):
        raise VerificationFailed("the signature payload's identity and digest must be strings")
    optional = doc["optional"]
    if optional is not None and not isinstance(optional, dict):
        raise VerificationFailed("the signature payload's optional field must be an object or null")
    return Payload(reference, digest, optional)


def _exact(obj: Any, fields: set[str], where: str) -> None:
    if not isinstance(obj, dict) or set(obj) != fields:
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise VerificationFailed(f"the signature payload's {where} must have exactly {sorted(fields)}, has {got}")
