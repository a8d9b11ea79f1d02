"""``--cache-from``: step records from registries, OCI layouts and images, fetched lazily.

Loading a cache reads only its manifest and config (the records).  A hit hands the
executor the record; the layer blob stays where it is until a step really needs the
files (a later step that misses stacks on it, or it is a layer of the final image).
A cache that cannot be read (missing, another format, unreachable) is a warning, and
a blob that turns out to be lost when fetched raises :class:`CacheBlobMissing`, so
the executor runs the step instead: a shared cache never fails a build.
"""

from __future__ import annotations

import json
import threading
from typing import Any, BinaryIO, Callable, Protocol

from registry import oci
from registry.errors import PybuildError

from .cache import CacheBlobMissing
from .cache_remote import CONFIG_TYPE, INLINE_KEY, CacheFormatError, CacheSpec, decode_records, record_layer


class LazyImage:
    """What the executor needs of a base image (id, config, layers) before any layer is here."""

    def __init__(self, id: str, config: dict[str, Any], layers: list[oci.Descriptor],
                 descriptor: oci.Descriptor | None = None):
        self.id = id
        self.config = config
        self.layers = layers
        self.descriptor = descriptor  # the (platform) manifest's, as StoredImage.descriptor

    @property
    def diff_ids(self) -> list[str]:
        return self.config.get("rootfs", {}).get("diff_ids", [])


class BlobSource(Protocol):
    def open_blob(self, desc: oci.Descriptor) -> Any: ...  # a readable binary stream (store or registry)


class _StoreBlobs:
    def __init__(self, store):
        self.store = store

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        return self.store.open_blob(desc.digest)


class ImportedCache:
    """The records of every ``--cache-from`` source, first source first."""

    def __init__(self, specs: list[CacheSpec], store, warn: Callable[[str], None], insecure: bool = False):
        self.store = store
        self.warn = warn
        self.insecure = insecure
        self.records: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, tuple[BlobSource, str]] = {}  # digest -> (where, what for messages)
        self.mounts: dict[str, tuple[oci.Descriptor, BlobSource]] = {}
        self.fetched_bytes = 0
        self.fetched_blobs = 0
        self._lock = threading.Lock()
        for spec in specs:
            try:
                self._load(spec)
            except (PybuildError, OSError, ValueError, KeyError, TypeError) as err:
                warn(f"[Warning] cache {spec}: {err}; building without it")

    # -- loading ------------------------------------------------------------------------
    def _load(self, spec: CacheSpec) -> None:
        if spec.kind == "local":
            from registry.remote.locations import OCIDirectory  # noqa: PLC0415
            layout = OCIDirectory(spec.path, spec.tag)
            manifest = layout.manifest()
            self._add_manifest(json.loads(manifest.raw), layout, spec.path)
            return
        if spec.kind != "registry":
            raise PybuildError("type=inline is only for --cache-to; read it with --cache-from IMAGE")
        if spec.bare and self._load_stored_image(spec.ref):
            return
        from registry.reference import parse  # noqa: PLC0415
        from registry.remote.client import RegistryClient  # noqa: PLC0415
        from registry.store import select_platform  # noqa: PLC0415

        ref = parse(spec.ref)
        client = RegistryClient(ref.registry, ref.repository, insecure=self.insecure)
        top = client.get_manifest(ref.digest or ref.tag or "latest")
        doc = json.loads(top.raw)
        if top.media_type in oci.INDEX_TYPES:
            doc = json.loads(client.get_manifest(select_platform(doc).digest).raw)
        self._add_manifest(doc, client, spec.ref)

    def _load_stored_image(self, name: str) -> bool:
        """``--cache-from IMAGE`` of an image in the local store (docker's legacy builder reads these)."""
        try:
            image = self.store.image(name)
        except PybuildError:
            return False
        self._add_inline(image.config, image.layers, _StoreBlobs(self.store), name)
        return True

    def _add_manifest(self, doc: dict[str, Any], source: BlobSource, where: str) -> None:
        config = oci.manifest_config(doc)
        with source.open_blob(config) as stream:
            data = json.loads(_read_all(stream, config.size))
        if config.media_type == CONFIG_TYPE:
            records, mounts = decode_records(data, where)
            listed = {d.digest for d in oci.manifest_layers(doc)}
            self._add_records(records, listed, source, where)
            for mount in mounts:
                desc = oci.Descriptor.from_json(mount["blob"])
                if desc.digest in listed:
                    self.mounts.setdefault(mount["id"], (desc, source))
        else:
            self._add_inline(data, oci.manifest_layers(doc), source, where)

    def _add_inline(self, config: dict[str, Any], layers: list[oci.Descriptor], source: BlobSource,
                    where: str) -> None:
        doc = config.get(INLINE_KEY)
        if doc is None:
            raise CacheFormatError(f"{where} has no inline cache (build it with --cache-to type=inline)")
        records, _ = decode_records(doc, where)
        self._add_records(records, {d.digest for d in layers}, source, where)

    def _add_records(self, records: list[dict[str, Any]], available: set[str], source: BlobSource,
                     where: str) -> None:
        for record in records:
            self.records.setdefault(record["key"], record)
            layer = record_layer(record)
            if layer is not None and layer.digest in available:
                self.blobs.setdefault(layer.digest, (source, where))

    def remote_image(self, name: str) -> "LazyImage":
        """A base image by manifest and config only; its layers become fetchable blobs, so a stage
        whose steps all hit never downloads its base (only the final image's layers are fetched)."""
        from registry.reference import parse  # noqa: PLC0415
        from registry.remote.client import RegistryClient  # noqa: PLC0415
        from registry.store import select_platform  # noqa: PLC0415

        ref = parse(name)
        client = RegistryClient(ref.registry, ref.repository, insecure=self.insecure)
        top = client.get_manifest(ref.digest or ref.tag or "latest")
        manifest = top
        if top.media_type in oci.INDEX_TYPES:
            manifest = client.get_manifest(select_platform(json.loads(top.raw)).digest)
        doc = json.loads(manifest.raw)
        config_desc = oci.manifest_config(doc)
        with client.open_blob(config_desc) as stream:
            raw = _read_all(stream, config_desc.size)
        if oci.sha256_digest(raw) != config_desc.digest:
            raise PybuildError(f"{name}: the registry sent a config that does not match its digest")
        layers = oci.manifest_layers(doc)
        with self._lock:
            for layer in layers:
                self.blobs.setdefault(layer.digest, (client, name))
        return LazyImage(config_desc.digest, json.loads(raw), layers, manifest.descriptor)

    # -- use ----------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key`` (a copy), or None."""
        record = self.records.get(key)
        return dict(record) if record is not None else None

    def available(self, digest: str) -> bool:
        """True when some source lists the blob (it may still turn out lost)."""
        return digest in self.blobs

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        """Stream a blob from the source that has it."""
        if desc.digest not in self.blobs:
            raise CacheBlobMissing(f"no cache source has layer {desc.digest[:19]}", set())
        return self.blobs[desc.digest][0].open_blob(desc)

    def seed_mount(self, cache_id: str, path: str) -> None:
        """Fill a new cache-mount dir from an imported one (``cache-mounts=true``); a failure is
        a warning, the RUN then starts with an empty mount."""
        entry = self.mounts.get(cache_id)
        if entry is None:
            return
        desc, source = entry
        from registry.errors import BadArchive  # noqa: PLC0415
        from registry.layer.extract import extract_layer  # noqa: PLC0415
        from registry.layer.stream import open_layer  # noqa: PLC0415
        try:
            with source.open_blob(desc) as blob, open_layer(blob, desc.media_type) as stream:
                extract_layer(stream, path, whiteouts="apply", name=f"cache mount {cache_id}")
        except (PybuildError, BadArchive, OSError) as err:
            self.warn(f"[Warning] cache mount {cache_id!r} could not be restored ({err}); it starts empty")
            return
        with self._lock:
            self.fetched_bytes += desc.size
            self.fetched_blobs += 1

    def fetch(self, desc: oci.Descriptor, keys: set[str]) -> None:
        """Copy one blob into the store; :class:`CacheBlobMissing` (naming ``keys``) if it cannot be had."""
        if desc.digest not in self.blobs:
            raise CacheBlobMissing(f"cached layer {desc.digest[:19]} is in no cache source", keys)
        source, where = self.blobs[desc.digest]
        try:
            with source.open_blob(desc) as stream, self.store.blob_writer(desc.digest, desc.size) as writer:
                while chunk := stream.read(1 << 20):
                    writer.write(chunk)
                writer.commit()
        except (PybuildError, OSError) as err:
            with self._lock:
                self.blobs.pop(desc.digest, None)
            raise CacheBlobMissing(f"cached layer {desc.digest[:19]} from {where} could not be fetched ({err})",
                                   keys) from None
        with self._lock:
            self.fetched_bytes += desc.size
            self.fetched_blobs += 1


def _read_all(stream: Any, size: int) -> bytes:  # a store or registry blob stream
    """A small blob's bytes (a stream may return short reads); a size cap against hostile sources."""
    if size > 64 << 20:
        raise PybuildError(f"cache config of {size} bytes is too large")
    chunks, total = [], 0
    while total < size and (chunk := stream.read(size - total)):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
