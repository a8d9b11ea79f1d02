"""Moving an image with progress, per-blob retries and several blobs at once.

:func:`transfer` wraps :func:`registry.image.copy_image`: the source's streams
are counted for the progress reporter, and a blob whose copy fails in transit
(connection lost for good, or content that does not match its digest) is copied
again from a freshly opened source stream, a bounded number of times; one that
timed out is not (the registry is unresponsive or too slow, and the request
already had its retries).
"""

from __future__ import annotations

import os
from typing import BinaryIO, Protocol, Sequence

from .. import oci
from ..errors import DigestMismatch
from ..image import ImageManifest, ImageSink, ImageSource, copy_image, copy_index
from ..reference import Reference
from .errors import RegistryTimeout, TransferError
from .transport import debug

DEFAULT_JOBS = 4


class Reporter(Protocol):
    """Receives per-blob progress (called from worker threads)."""

    def begin(self, desc: oci.Descriptor) -> None: ...

    def advance(self, desc: oci.Descriptor, nbytes: int) -> None: ...

    def finish(self, desc: oci.Descriptor, status: str) -> None: ...


def default_jobs() -> int:
    """Blobs moved at once: ``PYBUILD_JOBS`` or 4."""
    return max(1, int(os.environ.get("PYBUILD_JOBS", DEFAULT_JOBS)))


class _CountingStream:
    def __init__(self, stream: BinaryIO, desc: oci.Descriptor, reporter: Reporter):
        self.stream, self.desc, self.reporter = stream, desc, reporter

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if data:
            self.reporter.advance(self.desc, len(data))
        return data

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> "_CountingStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ObservedSource:
    def __init__(self, source: ImageSource, reporter: Reporter | None):
        self.source, self.reporter = source, reporter

    def manifest(self) -> ImageManifest:
        return self.source.manifest()

    def index(self) -> ImageManifest | None:
        index = getattr(self.source, "index", None)
        return index() if index is not None else None

    def child(self, desc: oci.Descriptor) -> "_ObservedSource":
        return _ObservedSource(self.source.child(desc), self.reporter)  # type: ignore[attr-defined]

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        stream = self.source.open_blob(desc)
        if self.reporter is None:
            return stream
        self.reporter.begin(desc)
        return _CountingStream(stream, desc, self.reporter)  # type: ignore[return-value]


class _RetryingSink:
    def __init__(self, sink: ImageSink, source: _ObservedSource, attempts: int):
        self.sink, self.source, self.attempts = sink, source, attempts

    def has_blob(self, desc: oci.Descriptor) -> bool:
        return self.sink.has_blob(desc)

    def write_blob(self, desc: oci.Descriptor, stream: BinaryIO) -> None:
        reopened: BinaryIO | None = None
        for attempt in range(self.attempts):
            try:
                self.sink.write_blob(desc, reopened or stream)
                return
            except (DigestMismatch, TransferError) as err:
                if attempt + 1 >= self.attempts or isinstance(err, RegistryTimeout):
                    raise
                debug(f"blob {desc.digest[:19]} failed ({err}); copying it again")
            finally:
                if reopened is not None:
                    reopened.close()
            reopened = self.source.open_blob(desc)

    def write_manifest(self, manifest: ImageManifest, refs: Sequence[Reference]) -> None:
        self.sink.write_manifest(manifest, refs)

    def write_child(self, manifest: ImageManifest) -> None:
        self.sink.write_child(manifest)


def transfer(source: ImageSource, sink: ImageSink, refs: Sequence[Reference] = (), *, jobs: int | None = None,
             reporter: Reporter | None = None, attempts: int = 3, all_platforms: bool = False) -> ImageManifest:
    """Copy one image from ``source`` to ``sink`` (see :func:`registry.image.copy_image`).

    With ``all_platforms``, an index the source names is copied whole (:func:`registry.image.copy_index`).
    """
    observed = _ObservedSource(source, reporter)
    status_of = getattr(sink, "mounted", {})

    def on_blob(desc: oci.Descriptor, status: str) -> None:
        if reporter is not None:
            reporter.finish(desc, "mounted" if desc.digest in status_of else status)

    copy = copy_index if all_platforms else copy_image
    return copy(observed, _RetryingSink(sink, observed, attempts), refs, jobs=jobs or default_jobs(),  # type: ignore[operator]
                on_blob=on_blob)
