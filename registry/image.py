"""One image abstraction for every place an image can be: store, archive, registry.

A :class:`ImageSource` hands out one image's manifest and blobs; a
:class:`ImageSink` accepts blobs and a manifest.  :func:`copy_image` moves an
image between any source and any sink, blob by blob, streaming, skipping blobs
the sink already has.  Adding a new kind of location means writing one source
and/or one sink, never a new copy routine.

A multi-platform image is an index over such images: an :class:`IndexSource` also
gives the index it names and a source per platform, and :func:`copy_index` copies
every platform (blobs, then the manifest, unnamed) and then the index under the
names.  Every sink takes an index as it takes a manifest.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Protocol, Sequence

from . import oci
from .errors import PybuildError
from .reference import Reference
from .store import Store, StoredImage


@dataclass
class ImageManifest:
    """The raw manifest of a single-platform image plus its parsed form."""

    raw: bytes
    media_type: str

    @property
    def parsed(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def digest(self) -> str:
        return oci.sha256_digest(self.raw)

    @property
    def descriptor(self) -> oci.Descriptor:
        return oci.Descriptor(self.media_type, self.digest, len(self.raw))

    @property
    def is_index(self) -> bool:
        return self.media_type in oci.INDEX_TYPES or "manifests" in self.parsed

    def blobs(self) -> list[oci.Descriptor]:
        """Config first, then layers bottom-up."""
        parsed = self.parsed
        return [oci.manifest_config(parsed)] + oci.manifest_layers(parsed)


class ImageSource(Protocol):
    """Where an image can be read from."""

    def manifest(self) -> ImageManifest:
        """The image manifest (a single platform, already selected)."""

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        """A stream of the blob's bytes; the caller closes it."""


class ImageSink(Protocol):
    """Where an image can be written to."""

    def has_blob(self, desc: oci.Descriptor) -> bool:
        """True when the sink already holds this blob (so it is skipped)."""

    def write_blob(self, desc: oci.Descriptor, stream: BinaryIO) -> None:
        """Store one blob from ``stream``, verifying it against ``desc``."""

    def write_manifest(self, manifest: ImageManifest, refs: Sequence[Reference]) -> None:
        """Store the manifest (or index) and name it ``refs`` (after every blob is written)."""

    def write_child(self, manifest: ImageManifest) -> None:
        """Store one platform's manifest of an index, unnamed (the index names it)."""


class IndexSource(ImageSource, Protocol):
    """A source that may name a multi-platform image."""

    def index(self) -> ImageManifest | None:
        """The index the source names, or None when it names a single image."""

    def child(self, desc: oci.Descriptor) -> ImageSource:
        """The image one index entry points at."""


BlobCallback = Callable[[oci.Descriptor, str], None]


def copy_image(src: ImageSource, dst: ImageSink, refs: Sequence[Reference] = (), *,
               jobs: int = 1, on_blob: BlobCallback | None = None) -> ImageManifest:
    """Copy one image: missing blobs (``jobs`` at a time), then the manifest.

    ``on_blob(desc, status)`` is told ``"exists"`` or ``"copied"`` for each blob.
    """
    manifest = src.manifest()
    _copy_blobs(src, manifest, dst, jobs, on_blob)
    dst.write_manifest(manifest, refs)
    return manifest


def copy_index(src: IndexSource, dst: ImageSink, refs: Sequence[Reference] = (), *,
               jobs: int = 1, on_blob: BlobCallback | None = None) -> ImageManifest:
    """Copy every platform of the index ``src`` names, then the index itself under ``refs``."""
    index = src.index()
    if index is None:
        return copy_image(src, dst, refs, jobs=jobs, on_blob=on_blob)
    for entry in index.parsed.get("manifests", []):
        desc = oci.Descriptor.from_json(entry)
        child = src.child(desc)
        manifest = child.manifest()
        if manifest.digest != desc.digest or manifest.is_index or not isinstance(manifest.parsed.get("config"), dict):
            raise PybuildError(f"index entry {desc.digest} is not an image manifest (nested indexes are not supported)")
        _copy_blobs(child, manifest, dst, jobs, on_blob)
        dst.write_child(manifest)
    dst.write_manifest(index, refs)
    return index


def _copy_blobs(src: ImageSource, manifest: ImageManifest, dst: ImageSink, jobs: int,
                on_blob: BlobCallback | None) -> None:
    def copy_blob(desc: oci.Descriptor) -> None:
        if dst.has_blob(desc):
            status = "exists"
        else:
            with src.open_blob(desc) as stream:
                dst.write_blob(desc, stream)
            status = "copied"
        if on_blob:
            on_blob(desc, status)

    blobs = manifest.blobs()
    if jobs <= 1 or len(blobs) <= 1:
        for desc in blobs:
            copy_blob(desc)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(copy_blob, desc) for desc in blobs]:
                future.result()


class StoreSource:
    """An image in the local store as an :class:`ImageSource`."""

    def __init__(self, store: Store, image: StoredImage | None, top: oci.Descriptor | None = None):
        self.store = store
        self._image = image
        self.top = top  # the index the name points at, if it is one

    @classmethod
    def named(cls, store: Store, name: str, platform: str | None = None, all_platforms: bool = False) -> "StoreSource":
        """``name`` in the store; an index resolves to ``platform`` (unless ``all_platforms``, when it is copied whole)."""
        desc = store.resolve(name)
        top = desc if desc.media_type in oci.INDEX_TYPES else None
        if top is not None and all_platforms:
            return cls(store, None, top)
        return cls(store, store.image_at(desc, platform), top)

    @property
    def image(self) -> StoredImage:
        if self._image is None:
            assert self.top is not None
            self._image = self.store.image_at(self.top)
        return self._image

    def index(self) -> ImageManifest | None:
        if self.top is None:
            return None
        return ImageManifest(self.store.read_blob(self.top.digest), self.top.media_type)

    def child(self, desc: oci.Descriptor) -> "StoreSource":
        return StoreSource(self.store, self.store.image_at(desc))

    def manifest(self) -> ImageManifest:
        desc = self.image.descriptor
        return ImageManifest(self.store.read_blob(desc.digest), self.image.manifest.get("mediaType") or desc.media_type)

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        return self.store.open_blob(desc.digest)  # type: ignore[return-value]  # a raw binary stream


class StoreSink:
    """The local store as an :class:`ImageSink`; blobs are verified as they stream in."""

    def __init__(self, store: Store):
        self.store = store
        self.written: oci.Descriptor | None = None

    def has_blob(self, desc: oci.Descriptor) -> bool:
        return self.store.has_blob(desc.digest)

    def write_blob(self, desc: oci.Descriptor, stream: BinaryIO) -> None:
        with self.store.blob_writer(desc.digest, desc.size) as writer:
            while chunk := stream.read(1 << 20):
                writer.write(chunk)
            writer.commit()

    def write_child(self, manifest: ImageManifest) -> None:
        self.store.put_bytes(manifest.raw, manifest.media_type)

    def write_manifest(self, manifest: ImageManifest, refs: Sequence[Reference]) -> None:
        desc = self.store.put_bytes(manifest.raw, manifest.media_type)
        self.written = desc
        if refs:
            for ref in refs:
                self.store.tag(ref, desc)
        else:
            self.store.keep(desc)
