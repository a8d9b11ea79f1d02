"""One image abstraction for every place an image can be: store, archive, registry.

A :class:`ImageSource` hands out one image's manifest and blobs; a
:class:`ImageSink` accepts blobs and a manifest.  :func:`copy_image` moves an
image between any source and any sink, blob by blob, streaming, skipping blobs
the sink already has.  Adding a new kind of location means writing one source
and/or one sink, never a new copy routine.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Protocol, Sequence

from . import oci
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
        """Store the manifest and name it ``refs`` (after every blob is written)."""


BlobCallback = Callable[[oci.Descriptor, str], None]


def copy_image(src: ImageSource, dst: ImageSink, refs: Sequence[Reference] = (), *,
               jobs: int = 1, on_blob: BlobCallback | None = None) -> ImageManifest:
    """Copy one image: missing blobs (``jobs`` at a time), then the manifest.

    ``on_blob(desc, status)`` is told ``"exists"`` or ``"copied"`` for each blob.
    """
    manifest = src.manifest()

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
    dst.write_manifest(manifest, refs)
    return manifest


class StoreSource:
    """An image in the local store as an :class:`ImageSource`."""

    def __init__(self, store: Store, image: StoredImage):
        self.store = store
        self.image = image

    @classmethod
    def named(cls, store: Store, name: str, platform: str | None = None) -> "StoreSource":
        return cls(store, store.image(name, platform))

    def manifest(self) -> ImageManifest:
        desc = self.image.descriptor
        return ImageManifest(self.store.read_blob(desc.digest), self.image.manifest.get("mediaType") or desc.media_type)

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        return self.store.open_blob(desc.digest)


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

    def write_manifest(self, manifest: ImageManifest, refs: Sequence[Reference]) -> None:
        desc = self.store.put_bytes(manifest.raw, manifest.media_type)
        self.written = desc
        if refs:
            for ref in refs:
                self.store.tag(ref, desc)
        else:
            self.store.keep(desc)
