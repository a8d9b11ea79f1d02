"""Where a shared build cache lives, and its artifact format (see docs/cache.md).

``--cache-to`` / ``--cache-from`` name a cache as buildx does (``type=registry,ref=...``,
``type=local,dest=DIR|src=DIR``, ``type=inline``, or a bare image reference).  The
artifact is laid out as BuildKit's ``image-manifest=true`` cache: an OCI image
manifest whose config is the cache config (our own media type, since the records are
keyed by our step keys, not BuildKit's) and whose layers are the blobs the records
point at.  The records are what ``$ROOT/cache/steps`` holds, so a step key computed on
any machine finds them.
"""

from __future__ import annotations

from typing import Any

from registry import oci
from registry.errors import PybuildError

CONFIG_TYPE = "application/vnd.pybuild.cache.config.v1+json"
FORMAT = "pybuild.cache.v1"
INLINE_KEY = "dev.pybuild.cache.v1"  # the image config field of type=inline records
MOUNT_ANNOTATION = "dev.pybuild.cache.mount"  # a layer that is a cache mount's content
DEFAULT_TAG = "latest"


class CacheSpec:
    """One ``--cache-to`` or ``--cache-from`` value."""

    def __init__(self, kind: str, ref: str = "", path: str = "", mode: str = "min", compression: str = "",
                 mounts: bool = False, tag: str = DEFAULT_TAG, bare: bool = False):
        self.kind = kind
        self.bare = bare  # a plain image reference: the local store is tried first  # registry | local | inline
        self.ref = ref
        self.path = path
        self.mode = mode
        self.compression = compression
        self.mounts = mounts
        self.tag = tag

    def __repr__(self) -> str:
        where = self.ref or self.path
        return f"type={self.kind}" + (f",{where}" if where else "")


def parse_spec(text: str, export: bool) -> CacheSpec:
    """Parse a buildx-style cache option; a value without ``=`` is an image reference."""
    flag = "--cache-to" if export else "--cache-from"
    if "=" not in text:
        return CacheSpec("registry", ref=text, bare=True)
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise PybuildError(f"invalid {flag} {text!r}: use type=registry,ref=REG/REPO:TAG")
        fields[key.strip()] = value.strip()
    kind = fields.pop("type", "registry")
    spec = CacheSpec(kind)
    if kind == "registry":
        spec.ref = fields.pop("ref", "")
        if not spec.ref:
            raise PybuildError(f"invalid {flag} {text!r}: type=registry needs ref=REG/REPO:TAG")
        from registry.reference import parse  # noqa: PLC0415
        parse(spec.ref)  # a bad name fails before the build
    elif kind == "local":
        spec.path = fields.pop("dest" if export else "src", "")
        if not spec.path:
            raise PybuildError(f"invalid {flag} {text!r}: type=local needs {'dest' if export else 'src'}=DIR")
        spec.tag = fields.pop("tag", DEFAULT_TAG)
    elif kind != "inline":
        raise PybuildError(f"invalid {flag} {text!r}: type must be registry, local or inline")
    if export:
        spec.mode = fields.pop("mode", "min")
        if spec.mode not in ("min", "max"):
            raise PybuildError(f"invalid {flag} {text!r}: mode must be min or max")
        spec.compression = fields.pop("compression", "")
        if spec.compression not in ("", "gzip", "zstd", "uncompressed"):
            raise PybuildError(f"invalid {flag} {text!r}: compression must be gzip, zstd or uncompressed")
        spec.mounts = fields.pop("cache-mounts", "false").lower() in ("true", "1", "yes")
    for ignored in ("ignore-error", "image-manifest", "oci-mediatypes", "force-compression",
                    "compression-level"):
        fields.pop(ignored, None)  # buildx options that do not change what we write
    if fields:
        raise PybuildError(f"invalid {flag} {text!r}: unknown option {sorted(fields)[0]!r}")
    return spec


# ---- the artifact ----------------------------------------------------------------------

def encode_config(records: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> bytes:
    """The cache config blob: records sorted by key, so equal caches give equal digests."""
    doc = {"format": FORMAT, "records": sorted(records, key=lambda r: r["key"]),
           "mounts": sorted(mounts, key=lambda m: m["id"])}
    return oci.canonical_json(doc)


def decode_records(doc: Any, where: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(records, mounts)`` of a cache config; a :class:`CacheFormatError` for anything else."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise CacheFormatError(f"{where} is a cache of another format ({found!r}, this pybuild reads {FORMAT!r})")
    records, mounts = doc.get("records"), doc.get("mounts") or []
    if not isinstance(records, list) or not isinstance(mounts, list):
        raise CacheFormatError(f"{where}: malformed cache config")
    good = [r for r in records if _valid_record(r)]
    return good, [m for m in mounts if isinstance(m, dict) and isinstance(m.get("id"), str) and _descriptor(m.get("blob"))]


def _descriptor(doc: Any) -> bool:
    try:
        oci.Descriptor.from_json(doc)
    except (PybuildError, TypeError, ValueError, KeyError, AttributeError):
        return False
    return True


def _valid_record(record: Any) -> bool:
    """A record the executor can apply: a key, a created time, and a layer with its diff_id or none."""
    if not isinstance(record, dict) or not isinstance(record.get("key"), str) or len(record["key"]) != 64:
        return False
    if not isinstance(record.get("created"), str) or not isinstance(record.get("created_by") or "", str):
        return False
    layer = record.get("layer")
    return layer is None or (_descriptor(layer) and isinstance(record.get("diff_id"), str)
                             and record["diff_id"].startswith("sha256:"))


def artifact_manifest(config: bytes, blobs: list[oci.Descriptor]) -> bytes:
    """The OCI manifest of a cache: the config and every blob it names (once each)."""
    seen: dict[str, oci.Descriptor] = {}
    for desc in blobs:
        seen.setdefault(desc.digest, desc)
    layers = sorted(seen.values(), key=lambda d: d.digest)
    doc = oci.make_manifest(oci.Descriptor(CONFIG_TYPE, oci.sha256_digest(config), len(config)), layers)
    return oci.canonical_json(doc)


class CacheFormatError(PybuildError):
    """A cache this version cannot read (older or newer format): it is skipped."""


def record_layer(record: dict[str, Any]) -> oci.Descriptor | None:
    layer = record.get("layer")
    return oci.Descriptor.from_json(layer) if layer else None

