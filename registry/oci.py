"""The OCI/Docker image model: media types, descriptors, manifests and configs.

Manifests and configs are kept as plain ``dict`` (the JSON as it is on disk) with
small helpers around them; :class:`Descriptor` is the one typed pointer to content.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .errors import PybuildError

# OCI media types
OCI_LAYOUT_VERSION = "1.0.0"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Docker schema 2 media types
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"

COMPRESSION_OF = {
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_FOREIGN: "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
}
LAYER_TYPE_FOR = {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces): equal objects give equal digests."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def layer_compression(media_type: str) -> str:
    """``gzip``, ``zstd`` or ``none`` for a layer media type (OCI or Docker)."""
    if media_type in COMPRESSION_OF:
        return COMPRESSION_OF[media_type]
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith("+gzip") or media_type.endswith(".gzip"):
        return "gzip"
    return "none"


# the OCI digest grammar: no '/' or '..', since a digest becomes a blob's file name
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


class InvalidManifest(PybuildError):
    """A manifest, index or descriptor that does not follow the image spec (hostile or broken)."""


def _field(doc: Any, key: str, kind: type, default: Any = None) -> Any:
    """``doc[key]`` checked to be a ``kind`` (absent or null: ``default``, if one is given)."""
    if not isinstance(doc, dict):
        raise InvalidManifest(f"a manifest, index or descriptor is not a JSON object (got {type(doc).__name__})")
    value = doc.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise InvalidManifest(f"{key!r} in a manifest, index or descriptor is not a JSON {kind.__name__}: {value!r:.80}")
    return value


class Descriptor:
    """A typed pointer to content: media type, digest and size (plus optional extras).

    Immutable; equality and hashing look at media type, digest and size only.
    (A plain class, not a dataclass: importing ``dataclasses`` costs ~20 ms of start-up.)
    """

    __slots__ = ("media_type", "digest", "size", "annotations", "platform", "urls")
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str]
    platform: dict[str, Any] | None
    urls: tuple[str, ...]

    def __init__(self, media_type: str, digest: str, size: int, annotations: dict[str, str] | None = None,
                 platform: dict[str, Any] | None = None, urls: tuple[str, ...] = ()):
        set_ = object.__setattr__
        set_(self, "media_type", media_type)
        set_(self, "digest", digest)
        set_(self, "size", size)
        set_(self, "annotations", dict(annotations or {}))
        set_(self, "platform", platform)
        set_(self, "urls", tuple(urls))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Descriptor is immutable")

    def _key(self) -> tuple[str, str, int]:
        return (self.media_type, self.digest, self.size)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descriptor) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Descriptor({self.media_type!r}, {self.digest!r}, {self.size})"

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it appears in manifests and indexes."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Descriptor":
        """Read a descriptor from manifest or index JSON; :class:`InvalidManifest` if it is not one."""
        digest, size = _field(obj, "digest", str), _field(obj, "size", int)
        if not _DIGEST.fullmatch(digest) or size < 0:
            raise InvalidManifest(f"invalid descriptor: digest {digest!r:.80}, size {size}")
        annotations = _field(obj, "annotations", dict, {})
        urls = _field(obj, "urls", list, [])
        if not all(isinstance(v, str) for v in [*annotations.values(), *urls]):
            raise InvalidManifest(f"descriptor {digest}: annotations and urls must be strings")
        return cls(
            media_type=_field(obj, "mediaType", str, ""),
            digest=digest,
            size=size,
            annotations=annotations,
            platform=_field(obj, "platform", dict, {}) or None,
            urls=tuple(urls),
        )


def make_manifest(config: Descriptor, layers: list[Descriptor], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """An OCI image manifest for a config and its layers."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if annotations:
        manifest["annotations"] = annotations
    return manifest


def manifest_layers(manifest: dict[str, Any]) -> list[Descriptor]:
    """The layer descriptors of an image manifest."""
    return [Descriptor.from_json(d) for d in _field(manifest, "layers", list, [])]


def manifest_config(manifest: dict[str, Any]) -> Descriptor:
    """The config descriptor of an image manifest."""
    return Descriptor.from_json(_field(manifest, "config", dict))


def index_manifests(index: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of an image index (JSON objects with a platform object or none)."""
    entries = _field(index, "manifests", list, [])
    for entry in entries:
        _field(entry, "platform", dict, {})
    return entries


def is_attestation(entry: dict[str, Any]) -> bool:
    """Whether an index entry is an attestation manifest (buildx's layout), not a runnable image."""
    annotations = entry.get("annotations") or {}
    return isinstance(annotations, dict) and annotations.get("vnd.docker.reference.type") == "attestation-manifest"


def image_manifests(index: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of an image index that are images (its attestation manifests left out)."""
    return [entry for entry in index_manifests(index) if not is_attestation(entry)]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return out
