"""Signing and verifying images in a registry (what ``pybuild sign`` and ``verify`` do).

The image is resolved to its manifest digest once; that digest is what gets signed
or checked, so a tag moved in between cannot swap the image under the signature.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from ..reference import Reference, parse
from ..remote.client import RegistryClient
from . import keys, simplesigning
from .cosign import Signature, attach_signature, read_signatures
from .simplesigning import Payload
from .verify import IdentityRule, check, match_repository


@dataclass
class Verified:
    """What ``verify`` found: the digest checked and the payloads that count."""

    ref: Reference
    digest: str
    payloads: list[Payload]
    signatures: list[Signature]


def resolve(ref: Reference, client: RegistryClient) -> str:
    """The manifest digest ``ref`` names at the registry (its own digest when it has one)."""
    return client.get_manifest(ref.digest or ref.tag or "latest").digest


def sign_image(name: str | Reference, key: ec.EllipticCurvePrivateKey, *, insecure: bool = False,
               digest: str | None = None) -> tuple[str, bool]:
    """Sign the image ``name`` (at ``digest`` when the caller already knows it); return
    ``(digest, added)``, ``added`` False when this very signature was there already."""
    ref = parse(name) if isinstance(name, str) else name
    client = RegistryClient(ref.registry, ref.repository, push=True, insecure=insecure)
    digest = digest or resolve(ref, client)
    payload = simplesigning.encode(simplesigning.Payload(ref.name, digest))
    signature = Signature(payload, base64.b64encode(keys.sign(key, payload)).decode())
    return digest, attach_signature(client, digest, signature)


def signatures_of(ref: Reference, *, insecure: bool = False) -> tuple[str, list[Signature]]:
    """``(digest, signatures)`` of the image ``ref`` names."""
    client = RegistryClient(ref.registry, ref.repository, insecure=insecure)
    digest = resolve(ref, client)
    return digest, read_signatures(client, digest)


def verify_image(name: str | Reference, key: keys.PublicKey, *, insecure: bool = False,
                 identity: IdentityRule = match_repository, key_name: str = "the key") -> Verified:
    """Check ``name``'s signatures against ``key``; :class:`VerificationFailed` when none counts."""
    ref = parse(name) if isinstance(name, str) else name
    digest, signatures = signatures_of(ref, insecure=insecure)
    payloads = check(signatures, ref, digest, key, identity, key_name)
    return Verified(ref, digest, payloads, signatures)
