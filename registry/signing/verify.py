"""Checking an image's signatures against a public key and an identity rule.

A signature counts when (1) its bytes verify over the payload with the key, (2) the
payload, parsed strictly, names the image's manifest digest, and (3) the name it
claims passes the identity rule.  The image is accepted when at least one signature
counts; otherwise the error lists, per signature, which of the three failed.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import InvalidReference
from ..reference import Reference, parse
from . import keys, simplesigning
from .cosign import Signature, signature_tag
from .errors import VerificationFailed
from .simplesigning import Payload

# (image reference, the reference the signature claims) -> None when it matches, else why not
IdentityRule = Callable[[Reference, Reference], "str | None"]


def match_repository(image: Reference, signed: Reference) -> str | None:
    """cosign's own check: the signature names the image's repository (any tag)."""
    return None if image.name == signed.name else f"signed for {signed.name}, not {image.name}"


def check(signatures: Sequence[Signature], image: Reference, digest: str, key: keys.PublicKey,
          identity: IdentityRule = match_repository, key_name: str = "the key") -> list[Payload]:
    """The payloads of the signatures that count; :class:`VerificationFailed` when none does."""
    if not signatures:
        raise VerificationFailed(f"{image} ({digest}) has no signatures (no {signature_tag(digest)} in "
                                 f"{image.name}); sign it with 'pybuild sign'")
    accepted, reasons = [], []
    for number, sig in enumerate(signatures, 1):
        why = _why_not(sig, image, digest, key, identity, key_name)
        if why is None:
            accepted.append(simplesigning.decode(sig.payload))
        else:
            reasons.append(f"signature {number}: {why}")
    if not accepted:
        raise VerificationFailed(f"no valid signature for {image} ({digest}): " + "; ".join(reasons))
    return accepted


def _why_not(sig: Signature, image: Reference, digest: str, key: keys.PublicKey, identity: IdentityRule,
             key_name: str) -> str | None:
    try:
        raw_signature = sig.signature()
    except VerificationFailed as err:
        return str(err)
    if not keys.verify(key, sig.payload, raw_signature):
        return f"does not verify with {key_name} (another key, or the payload was altered)"
    try:
        payload = simplesigning.decode(sig.payload)
    except VerificationFailed as err:
        return str(err)
    if payload.digest != digest:
        return f"signs manifest {payload.digest}, not {digest} (a signature copied from another image)"
    try:
        signed = parse(payload.docker_reference, default_tag=False)
    except InvalidReference:
        return f"names {payload.docker_reference!r}, which is not an image reference"
    return identity(image, signed)
