"""In-toto attestations attached to an image the way BuildKit attaches them.

The image becomes an OCI index of two manifests: the image itself (with its
platform) and an *attestation manifest* (platform ``unknown/unknown``, annotations
``vnd.docker.reference.type: attestation-manifest`` and ``vnd.docker.reference.digest:
<image manifest digest>``) whose layers are in-toto statements (media type
``application/vnd.in-toto+json``, annotation ``in-toto.io/predicate-type``) about that
image.  Readers that know BuildKit's layout (``docker buildx imagetools inspect``) find
them; runtimes pick the image by platform and never see the attestation manifest.
"""

from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import quote

from . import oci
from .errors import PybuildError
from .reference import is_digest
from .store import Store

INTOTO = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v0.1"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"
SPDX_PREDICATE = "https://spdx.dev/Document"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
MAX_STATEMENT = 64 << 20
UNKNOWN_PLATFORM = {"architecture": "unknown", "os": "unknown"}


def statement(subject_name: str, digest: str, predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    """An in-toto statement about the image manifest ``digest``."""
    return {"_type": STATEMENT_TYPE, "predicateType": predicate_type,
            "subject": [{"name": subject_name, "digest": {"sha256": digest.partition(":")[2]}}],
            "predicate": predicate}


def subject_name(name: str, platform: dict[str, Any] | None) -> str:
    """BuildKit's subject name: ``pkg:docker/NAME@TAG?platform=os%2Farch``."""
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    plat = "/".join(filter(None, [(platform or {}).get(k) for k in ("os", "architecture", "variant")]))
    return f"pkg:docker/{repo}@{tag}" + (f"?platform={quote(plat, safe='')}" if plat else "")


def attach(store: Store, image: oci.Descriptor, statements: list[dict[str, Any]]) -> oci.Descriptor:
    """Store an attestation manifest for ``image`` and an index of both; return the index descriptor."""
    manifest = store.read_json(image.digest)
    config = store.read_json(manifest["config"]["digest"])
    platform = {k: config[k] for k in ("architecture", "os", "variant") if config.get(k)}
    layers = []
    for doc in statements:
        desc = store.put_bytes(json.dumps(doc, indent=2).encode(), INTOTO)
        layers.append(oci.Descriptor(INTOTO, desc.digest, desc.size, {PREDICATE_ANNOTATION: doc["predicateType"]}))
    att_config = {**UNKNOWN_PLATFORM, "config": {},
                  "rootfs": {"type": "layers", "diff_ids": [d.digest for d in layers]}}
    config_desc = store.put_bytes(oci.canonical_json(att_config), oci.OCI_CONFIG)
    att = store.put_bytes(oci.canonical_json(oci.make_manifest(config_desc, layers)), oci.OCI_MANIFEST)
    index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [
        oci.Descriptor(image.media_type, image.digest, image.size, platform=platform).to_json(),
        oci.Descriptor(oci.OCI_MANIFEST, att.digest, att.size, platform=dict(UNKNOWN_PLATFORM),
                       annotations={REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: image.digest}).to_json(),
    ]}
    return store.put_bytes(oci.canonical_json(index), oci.OCI_INDEX)


ReadManifest = Callable[[str], bytes]
ReadBlob = Callable[[oci.Descriptor], bytes]


def find(top: bytes, read_manifest: ReadManifest, read_blob: ReadBlob) -> list[dict[str, Any]]:
    """Every attestation reachable from a manifest or index: ``{"image", "predicateType", "statement"}``.

    A plain image manifest has none (an empty list).
    """
    try:
        return _find(top, read_manifest, read_blob)
    except (ValueError, AttributeError, TypeError, KeyError, oci.InvalidManifest):
        raise PybuildError("the image's index or attestation manifest is malformed; refusing it") from None


def _find(top: bytes, read_manifest: ReadManifest, read_blob: ReadBlob) -> list[dict[str, Any]]:
    out = []
    for entry in json.loads(top).get("manifests") or []:
        annotations = entry.get("annotations") or {}
        if annotations.get(REFERENCE_TYPE) != ATTESTATION_MANIFEST or not is_digest(entry["digest"]):
            continue
        manifest = json.loads(read_manifest(entry["digest"]))
        for layer in manifest.get("layers") or []:
            desc = oci.Descriptor.from_json(layer)
            if desc.media_type != INTOTO or desc.size > MAX_STATEMENT or not is_digest(desc.digest):
                continue
            doc = json.loads(read_blob(desc))
            out.append({"image": annotations.get(REFERENCE_DIGEST, ""),
                        "predicateType": desc.annotations.get(PREDICATE_ANNOTATION) or doc.get("predicateType", ""),
                        "statement": doc})
    return out


def attestations_of(store: Store, name: str, *, insecure: bool = False) -> list[dict[str, Any]]:
    """The attestations of ``name``: from the store when it has the name, else from its registry
    (``docker://REF`` always asks the registry)."""
    from .errors import ImageNotFound

    if not name.startswith("docker://"):
        try:
            top = store.resolve(name)
        except ImageNotFound:
            pass
        else:
            return find(store.read_blob(top.digest), store.read_blob, lambda desc: store.read_blob(desc.digest))
    from .reference import parse
    from .remote.client import RegistryClient

    ref = parse(name.removeprefix("docker://"))
    client = RegistryClient(ref.registry, ref.repository, insecure=insecure)
    top_raw = client.get_manifest(ref.digest or ref.tag or "latest").raw
    return find(top_raw, lambda digest: client.get_manifest(digest).raw,
                lambda desc: client.read_small_blob(desc, MAX_STATEMENT))
