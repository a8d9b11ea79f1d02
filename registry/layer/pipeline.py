"""One streaming pass from a tar stream to a stored blob, with both digests.

Stages run in their own threads, joined by bounded queues (memory stays flat):

    tar (walk + read, fixed-size segments) -> sha256 of the tar (diff_id) + CRC
    -> compress (a small pool, order kept) -> the store's blob writer (sha256 = digest)

hashlib, ISA-L and zstd release the GIL, so stages run on both cores; several
short stages share two cores more evenly than one long one.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Callable

from .. import oci
from .compress import make_codec
from .tarwriter import Segmenter, TreeWriter

if TYPE_CHECKING:
    from ..store import Store

IN_FLIGHT = 4  # items queued between two stages
WORKERS = 2  # gzip segments compressed in parallel

Produce = Callable[[Segmenter], None]
_END = object()


@dataclass(frozen=True)
class LayerResult:
    """A layer blob in the store: its descriptor (digest, size, media type) and diff_id."""

    descriptor: oci.Descriptor
    diff_id: str
    uncompressed_size: int


class _Cancelled(Exception):
    pass


class _Stages:
    """Threads joined by bounded queues; an error anywhere stops them all and is re-raised.

    Every wait on a queue (put or get) gives up once the pipeline is stopped, so no
    stage can be left waiting for an item or an end marker that will never come, and
    :meth:`stop` joins every thread.  (A producer must not block for ever on its source:
    today it walks a directory.)
    """

    _POLL = 0.1  # seconds between looks at the stop flag while a queue is full or empty

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def put(self, q: queue.Queue[Any], item: Any) -> None:
        """Block until there is room, unless the pipeline was stopped."""
        while True:
            if self._stop.is_set():
                raise _Cancelled()
            try:
                return q.put(item, timeout=self._POLL)
            except queue.Full:
                continue

    def get(self, q: queue.Queue[Any]) -> Any:
        """Block until there is an item, unless the pipeline was stopped."""
        while True:
            if self._stop.is_set():
                raise _Cancelled()
            try:
                return q.get(timeout=self._POLL)
            except queue.Empty:
                continue

    def start(self, name: str, body: Callable[[], None], out: queue.Queue[Any]) -> None:
        """Run ``body`` in a thread; on return send the end marker, on error the error."""
        def run() -> None:
            try:
                body()
                self.put(out, _END)
            except _Cancelled:
                pass
            except BaseException as err:
                try:
                    self.put(out, err)
                except _Cancelled:
                    pass

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def items(self, q: queue.Queue[Any]):
        """The items of ``q`` up to the end marker; an error item is raised."""
        while (item := self.get(q)) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        """Cancel every stage and wait for the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join()


def stream_to_blob(store: "Store", produce: Produce, compression: str = "gzip", level: int | None = None) -> LayerResult:
    """Run ``produce`` (which writes a tar stream into a Segmenter) into a new blob."""
    codec = make_codec(compression, level)
    diff_hash = None if codec.identity else hashlib.sha256()
    segments: queue.Queue[Any] = queue.Queue(IN_FLIGHT)
    compressed: queue.Queue[Any] = queue.Queue(IN_FLIGHT)
    stages = _Stages()
    total = 0

    def tar() -> None:
        out = Segmenter(lambda segment: stages.put(segments, segment))
        produce(out)
        out.close()

    def digest_and_compress() -> None:
        nonlocal total
        for segment in stages.items(segments):
            if diff_hash is not None:
                diff_hash.update(segment)
            codec.observe(segment)
            total += len(segment)
            stages.put(compressed, pool.submit(codec.segment, segment))

    with ThreadPoolExecutor(WORKERS if codec.parallel else 1, thread_name_prefix="layer-compress") as pool:
        stages.start("layer-tar", tar, segments)
        stages.start("layer-diff-id", digest_and_compress, compressed)
        try:
            with store.blob_writer(what="layer") as writer:
                writer.write(codec.begin())
                for future in stages.items(compressed):
                    writer.write(future.result())
                writer.write(codec.end())
                digest, size = writer.commit()
        finally:
            stages.stop()
    diff_id = digest if diff_hash is None else "sha256:" + diff_hash.hexdigest()
    return LayerResult(oci.Descriptor(codec.media_type, digest, size), diff_id, total)


def write_layer(store: "Store", source_dir: str | os.PathLike[str], *, compression: str = "gzip",
                level: int | None = None, source_date_epoch: int | None = None,
                overlay_upper: bool = False) -> LayerResult:
    """Tar ``source_dir`` deterministically, compress it and store it as one blob.

    ``overlay_upper``: the dir is an overlayfs upper dir (a RUN step's diff) whose
    whiteouts and opaque dirs become OCI whiteout entries.
    """
    def produce(out: Segmenter) -> None:
        TreeWriter(out, source_date_epoch=source_date_epoch, overlay_upper=overlay_upper).write_tree(source_dir)

    return stream_to_blob(store, produce, compression, level)


def tar_stream_to_blob(store: "Store", fileobj: IO[bytes], compression: str = "gzip",
                       level: int | None = None) -> LayerResult:
    """Store an uncompressed tar stream (e.g. from :func:`open_layer`) compressed as asked."""
    def produce(out: Segmenter) -> None:
        out.copy_from(fileobj.readinto)  # type: ignore[attr-defined]  # a binary stream has readinto

    return stream_to_blob(store, produce, compression, level)
