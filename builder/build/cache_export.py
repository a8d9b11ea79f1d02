"""``--cache-to``: the build's step records as a cache artifact in a registry or an OCI layout,
or (``type=inline``) in the image config.

Only records go into the config; a record's layer blob is listed in the artifact
when this machine can supply it (the store, or the cache it was imported from), so
the artifact never names a blob the registry lacks.  A record whose blob cannot be
supplied (a builder-stage step that was itself a lazy hit from an inline cache) is
kept as a key link without a blob: a later build still matches through it.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Callable

from registry import oci
from registry.errors import PybuildError
from registry.image import ImageManifest

from .cache import CacheBlobMissing
from .cache_import import ImportedCache
from .cache_remote import MOUNT_ANNOTATION, CacheSpec, artifact_manifest, encode_config, record_layer

_FIELDS = ("layer", "diff_id", "created", "created_by")


class StepRecord:
    """A layer step as the build met it: its stage, key and record (ran or cached)."""

    def __init__(self, stage: int, key: str, record: dict[str, Any]):
        self.stage = stage
        self.key = key
        self.record = record

    def exported(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key}
        out.update({f: self.record.get(f) for f in _FIELDS})
        return out


def select(steps: list[StepRecord], mode: str, final_stages: set[int]) -> list[StepRecord]:
    """``mode=max``: every stage's steps; ``min``: the steps of the final image's stages."""
    chosen = steps if mode == "max" else [s for s in steps if s.stage in final_stages]
    unique: dict[str, StepRecord] = {}
    for step in chosen:
        unique.setdefault(step.key, step)
    return list(unique.values())


def inline_config(steps: list[StepRecord]) -> dict[str, Any]:
    """The records ``type=inline`` puts in the image config: every stage's keys, so a stage that is
    only copied from is matched through; blobs are the image's own."""
    import json  # noqa: PLC0415
    return json.loads(encode_config([s.exported() for s in select(steps, "max", set())], []))


class _ArtifactSource:
    """The artifact as an :class:`registry.image.ImageSource`: config in memory, blobs from the store
    or the imported cache."""

    def __init__(self, manifest: bytes, config: bytes, store, imported: ImportedCache | None):
        self._manifest = ImageManifest(manifest, oci.OCI_MANIFEST)
        self.config = config
        self.store = store
        self.imported = imported

    def manifest(self) -> ImageManifest:
        return self._manifest

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        if desc.digest == oci.sha256_digest(self.config):
            import io  # noqa: PLC0415
            return io.BytesIO(self.config)
        if self.store.has_blob(desc.digest) or self.imported is None:
            return self.store.open_blob(desc.digest)
        return self.imported.open_blob(desc)


def export(spec: CacheSpec, steps: list[StepRecord], final_stages: set[int], store,
           imported: ImportedCache | None, mounts: list[tuple[str, oci.Descriptor]],
           warn: Callable[[str], None], insecure: bool = False) -> str:
    """Write the cache ``spec`` names; return the artifact's manifest digest."""
    from registry.remote.transfer import transfer  # noqa: PLC0415

    sink, refs = _sink(spec, insecure, imported)
    records, blobs = [], []
    for step in select(steps, spec.mode, final_stages):
        record = step.exported()
        layer = record_layer(record)
        if layer is not None and _supplied(layer, store, imported, sink, warn):
            blobs.append(layer)
        records.append(record)
    mount_docs = []
    for cache_id, desc in mounts:
        blobs.append(oci.Descriptor(desc.media_type, desc.digest, desc.size, annotations={MOUNT_ANNOTATION: cache_id}))
        mount_docs.append({"id": cache_id, "blob": desc.to_json()})
    config = encode_config(records, mount_docs)
    manifest = artifact_manifest(config, blobs)
    source = _ArtifactSource(manifest, config, store, imported)
    try:
        transfer(source, sink, refs)
    except PybuildError as err:
        raise PybuildError(f"exporting the build cache to {spec}: {err}") from None
    return oci.sha256_digest(manifest)


def pack_mounts(store, mounts: dict[str, str], compression: str) -> list[tuple[str, oci.Descriptor]]:
    """Each cache mount's directory as a layer blob in the store (``cache-mounts=true``)."""
    from registry.layer import write_layer  # noqa: PLC0415
    return [(cache_id, write_layer(store, path, compression=compression).descriptor)
            for cache_id, path in sorted(mounts.items())]


def _supplied(layer: oci.Descriptor, store, imported: ImportedCache | None, sink, warn) -> bool:
    """Whether the artifact can list ``layer``: the store or the sink has it, or it can be fetched."""
    if store.has_blob(layer.digest) or sink.has_blob(layer):
        return True
    if imported is None or not imported.available(layer.digest):
        return False
    try:
        imported.fetch(layer, set())
    except CacheBlobMissing as err:
        warn(f"[Warning] {err}; the cache keeps the step without its layer")
        return False
    return True


def _sink(spec: CacheSpec, insecure: bool, imported: ImportedCache | None):
    if spec.kind == "local":
        from registry.remote.locations import OCIDirectory  # noqa: PLC0415
        return OCIDirectory(spec.path, spec.tag), []
    from registry.reference import parse  # noqa: PLC0415
    from registry.remote.client import RegistryClient  # noqa: PLC0415
    from registry.remote.image import RemoteSink  # noqa: PLC0415

    ref = parse(spec.ref)

    def mount_from(digest: str) -> list[str]:
        """A blob the imported cache has in another repository of the same registry is mounted,
        never downloaded and uploaded again."""
        source = imported.blobs.get(digest, (None, ""))[0] if imported is not None else None
        if getattr(source, "registry", None) == ref.registry:
            return [source.repository]  # type: ignore[union-attr]
        return []

    client = RegistryClient(ref.registry, ref.repository, push=True, insecure=insecure)
    return RemoteSink(client, mount_from=mount_from), [ref]
