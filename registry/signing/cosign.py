"""Where cosign keeps signatures in a registry, and reading and adding them.

The signatures of the image with digest ``sha256:H`` live in the same repository
under the tag ``sha256-H.sig``: an OCI manifest whose every layer is one signature,
the layer blob the simple-signing payload (media type
``application/vnd.dev.cosign.simplesigning.v1+json``) and the base64 signature in
its ``dev.cosignproject.cosign/signature`` annotation.  Signing again appends a
layer, so signatures by several keys accumulate.  (The registry here, distribution
2.8, has no referrers API, so the tag schema is the only one written.)
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from .. import oci
from ..reference import is_digest
from ..remote.client import RegistryClient
from ..remote.errors import RemoteNotFound
from .errors import VerificationFailed

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
MAX_PAYLOAD = 256 << 10
MAX_SIGNATURES = 256
_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class Signature:
    """One signature: the payload bytes, the base64 signature, the layer's other annotations."""

    payload: bytes
    signature_b64: str
    annotations: dict[str, str] = field(default_factory=dict)

    def signature(self) -> bytes:
        try:
            return base64.b64decode(self.signature_b64, validate=True)
        except ValueError:
            raise VerificationFailed("a signature annotation is not valid base64") from None

    def layer(self) -> oci.Descriptor:
        annotations = {**self.annotations, SIGNATURE_ANNOTATION: self.signature_b64}
        return oci.Descriptor(SIMPLESIGNING, oci.sha256_digest(self.payload), len(self.payload), annotations)


def signature_tag(digest: str) -> str:
    """``sha256:abc…`` → ``sha256-abc….sig``."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.sig"


def read_signatures(client: RegistryClient, digest: str) -> list[Signature]:
    """Every signature stored for ``digest`` in ``client``'s repository ([] when there are none)."""
    try:
        manifest = client.get_manifest(signature_tag(digest))
    except RemoteNotFound:
        return []
    layers = _layers(manifest.raw, digest)
    if len(layers) > MAX_SIGNATURES:
        raise VerificationFailed(f"the signature manifest of {digest} has {len(layers)} layers; refusing it")
    out = []
    for desc in layers:
        signature = desc.annotations.get(SIGNATURE_ANNOTATION)
        if desc.media_type != SIMPLESIGNING or not isinstance(signature, str):
            continue
        others = {k: v for k, v in desc.annotations.items() if k != SIGNATURE_ANNOTATION}
        out.append(Signature(client.read_small_blob(desc, MAX_PAYLOAD), signature, others))
    return out


def _layers(raw: bytes, digest: str) -> list[oci.Descriptor]:
    """The layers of a signature manifest (a registry's answer: anything may be malformed)."""
    try:
        layers = [oci.Descriptor.from_json(entry) for entry in json.loads(raw).get("layers") or []]
    except (ValueError, AttributeError, TypeError, KeyError, oci.InvalidManifest):
        layers = None
    if layers is None or not all(is_digest(d.digest) for d in layers):
        raise VerificationFailed(f"the signature manifest of {digest} is malformed; refusing it")
    return layers


def attach_signature(client: RegistryClient, digest: str, signature: Signature) -> bool:
    """Add ``signature`` to the image's signature manifest; False when it was there already."""
    try:
        current = _layers(client.get_manifest(signature_tag(digest)).raw, digest)
    except RemoteNotFound:
        current = []
    layer = signature.layer()
    if any(d.digest == layer.digest and d.annotations.get(SIGNATURE_ANNOTATION) == signature.signature_b64
           for d in current):
        return False
    layers = current + [layer]
    _upload(client, layer, signature.payload)
    config = {"architecture": "", "created": _ZERO_TIME, "history": [{"created": _ZERO_TIME}], "os": "",
              "rootfs": {"type": "layers", "diff_ids": [d.digest for d in layers]}, "config": {}}
    config_raw = json.dumps(config, separators=(",", ":")).encode()
    config_desc = oci.Descriptor(oci.OCI_CONFIG, oci.sha256_digest(config_raw), len(config_raw))
    _upload(client, config_desc, config_raw)
    manifest = json.dumps(oci.make_manifest(config_desc, layers), separators=(",", ":")).encode()
    client.put_manifest(signature_tag(digest), manifest, oci.OCI_MANIFEST)
    return True


def _upload(client: RegistryClient, desc: oci.Descriptor, data: bytes) -> None:
    if client.head_blob(desc.digest) is None:
        client.upload_blob(desc, [data])
