"""The local image store: an OCI image layout at ``$PYBUILD_ROOT/store``.

Readable as-is by skopeo (``oci:$ROOT/store:NAME``), umoci and oci-image-tool.

Invariants:
- a blob's name is the sha256 of its bytes: every blob is written to a temp file
  under ``$ROOT/tmp``, hashed while written, fsynced, verified and renamed;
- ``index.json`` is replaced atomically under an exclusive lock, so concurrent
  processes never lose a tag;
- writers of blobs that are not yet tagged hold the shared GC lock
  (:meth:`Store.transaction`); :meth:`Store.prune` takes it exclusively.

Tags are index entries whose ``org.opencontainers.image.ref.name`` annotation is
the image's familiar name (``busybox:latest``, ``localhost:5000/app:1``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from . import oci, tempfiles
from .errors import BadArchive, DigestMismatch, ImageNotFound, PybuildError, StoreCorrupt
from .reference import Reference, is_digest, parse

_CHUNK = 1 << 20
_STALE_TEMP_SECONDS = 3600


class StoreWriteFailed(PybuildError):
    """The disk under the store refused a write (full, over quota, or failing)."""


_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def disk_errors(what: str, root: Path) -> Iterator[None]:
    """Turn a full or failing disk under ``root`` into one line that says what to do."""
    try:
        yield
    except OSError as err:
        if err.errno in _FULL:
            raise StoreWriteFailed(f"no space left on device writing {what}; free space under {root}") from None
        if err.errno == errno.EIO:
            raise StoreWriteFailed(f"I/O error writing {what} under {root}; check the disk (dmesg)") from None
        raise


class BlobCorrupt(StoreCorrupt):
    """A stored blob's bytes do not hash to its name."""

    def __init__(self, digest: str):
        super().__init__(f"blob {digest} is corrupt; run pybuild fsck")
        self.digest = digest


class VerifiedBlob(io.RawIOBase):
    """A stored blob, read once, hashed as it streams.

    The read that reaches the blob's end checks the digest first and raises
    :class:`BlobCorrupt` instead of returning the last bytes, so no consumer (an
    archive, an upload, an unpack) ever gets all of a corrupt blob.
    """

    def __init__(self, path: Path, digest: str):
        super().__init__()
        self._file = open(path, "rb", buffering=0)
        self._digest = digest
        self._left = os.fstat(self._file.fileno()).st_size
        self._hash = hashlib.sha256()
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        n = self._file.readinto(buf) or 0
        self._account(memoryview(buf)[:n])
        return n

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, straight from the file into the returned object (no copy:
        the base class's ``read`` fills a bytearray and copies it, 2x the memory traffic for
        a large upload)."""
        if size is None or size < 0:
            return self.readall()
        data = self._file.read(size) or b""
        self._account(data)
        return data

    def _account(self, data) -> None:
        """Hash what was just read; check the digest on the read that reaches the end, before it is returned."""
        if data:
            self._hash.update(data)
            self._left -= len(data)
        if self._left <= 0 or not data:
            self._check()

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._left != 0 or "sha256:" + self._hash.hexdigest() != self._digest:
            raise BlobCorrupt(self._digest)

    def finish(self) -> None:
        """Hash what the reader left unread (the same single pass) and check the digest."""
        buf = bytearray(_CHUNK)
        while not self._checked and self.readinto(buf):
            pass
        self._check()

    def close(self) -> None:
        self._file.close()
        super().close()


class StoredImage:
    """An image manifest in the store with its parsed config."""

    __slots__ = ("descriptor", "manifest", "config")

    def __init__(self, descriptor: oci.Descriptor, manifest: dict[str, Any], config: dict[str, Any]):
        self.descriptor = descriptor
        self.manifest = manifest
        self.config = config

    @property
    def id(self) -> str:
        """The image ID: the digest of the config blob (as docker defines it)."""
        return self.manifest["config"]["digest"]

    @property
    def layers(self) -> list[oci.Descriptor]:
        """Layer descriptors, bottom first."""
        return oci.manifest_layers(self.manifest)

    @property
    def diff_ids(self) -> list[str]:
        """Uncompressed layer digests from the config, bottom first."""
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    @property
    def size(self) -> int:
        """Sum of the compressed layer sizes."""
        return sum(layer.size for layer in self.layers)


class FsckReport:
    """What :meth:`Store.fsck` found: damage descriptions and counts."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.damaged: dict[str, str] = {}  # digest -> "corrupt" (bytes do not match the name) or "missing"
        self.blobs_checked = 0
        self.images_checked = 0

    @property
    def clean(self) -> bool:
        return not self.problems


class _Hasher:
    """SHA-256 on a helper thread, so hashing a chunk overlaps writing it (hashlib drops the GIL)."""

    def __init__(self, digest: "hashlib._Hash") -> None:
        import queue
        import threading

        self.hash = digest
        self._todo: "queue.SimpleQueue[bytes | memoryview | None]" = queue.SimpleQueue()
        self._done = threading.Semaphore(0)
        self._thread = threading.Thread(target=self._loop, name="blob-hash", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (data := self._todo.get()) is not None:
            self.hash.update(data)
            self._done.release()

    def start(self, data: bytes | memoryview) -> None:
        self._todo.put(data)

    def wait(self) -> None:
        self._done.acquire()

    def close(self) -> None:
        self._todo.put(None)
        self._thread.join()


class BlobWriter:
    """Streams one blob into the store: hash while writing, then verify and rename.

    Large chunks are hashed on a helper thread while this thread writes them; both
    finish before :meth:`write` returns, so callers may reuse their buffers.  Written
    ranges are handed to the kernel for writeback as they go (``POSIX_FADV_DONTNEED``),
    so the final fsync is short and big blobs do not crowd the page cache.
    """

    _THREADED_CHUNK = 256 << 10
    _WRITEBACK_EVERY = 32 << 20

    def __init__(self, store: "Store", expected_digest: str | None, expected_size: int | None,
                 what: str | None = None):
        self._store = store
        self._what = what or (f"blob {expected_digest}" if expected_digest else "a blob")
        self._expected_digest = expected_digest
        self._expected_size = expected_size
        self._hash = hashlib.sha256()
        self._hasher: _Hasher | None = None
        self.size = 0
        self._synced_to = 0
        self.path = store.tmp / tempfiles.temp_name("blob")
        self._fd: int | None = None
        self.digest: str | None = None
        with self._disk():
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)

    def _disk(self) -> contextlib.AbstractContextManager[None]:
        return disk_errors(self._what, self._store.root)

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes to the blob."""
        assert self._fd is not None, "blob writer already closed"
        with self._disk():
            self._write(data)

    def _write(self, data: bytes | memoryview) -> None:
        assert self._fd is not None
        if len(data) >= self._THREADED_CHUNK:
            if self._hasher is None:
                self._hasher = _Hasher(self._hash)
            self._hasher.start(data)
            try:
                self._write_all(data)
            finally:
                self._hasher.wait()
        else:
            self._hash.update(data)
            self._write_all(data)
        self.size += len(data)
        if self.size - self._synced_to >= self._WRITEBACK_EVERY:
            os.posix_fadvise(self._fd, self._synced_to, self.size - self._synced_to, os.POSIX_FADV_DONTNEED)
            self._synced_to = self.size

    def _write_all(self, data: bytes | memoryview) -> None:
        assert self._fd is not None, "blob writer already closed"
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def commit(self) -> tuple[str, int]:
        """Verify against the expected digest and size, then move into place."""
        assert self._fd is not None, "blob writer already closed"
        with self._disk():
            os.fsync(self._fd)
        self._close()
        digest = "sha256:" + self._hash.hexdigest()
        if self._expected_size is not None and self.size != self._expected_size:
            self.abort()
            raise DigestMismatch(f"blob {self._expected_digest or digest} has {self.size} bytes, expected {self._expected_size}")
        if self._expected_digest is not None and digest != self._expected_digest:
            self.abort()
            raise DigestMismatch(f"content hashed to {digest}, expected {self._expected_digest}; nothing was stored")
        self._store._install(self.path, digest)
        self.digest = digest
        return digest, self.size

    def _close(self) -> None:
        if self._hasher is not None:
            self._hasher.close()
            self._hasher = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abort(self) -> None:
        """Drop the temp file (safe to call more than once)."""
        self._close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self.digest is None:
            self.abort()


class Store:
    """An OCI image layout plus pybuild's locks and temp space under one root."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.layout = self.root / "store"
        self.blobs = self.layout / "blobs" / "sha256"
        self.tmp = self.root / "tmp"
        self._locks = self.root / "locks"
        self._swept = False
        for directory in (self.blobs, self.tmp, self._locks):
            directory.mkdir(parents=True, exist_ok=True)
        layout_file = self.layout / "oci-layout"
        if not layout_file.exists():
            _atomic_write(layout_file, json.dumps({"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}).encode(), self.tmp)
        if not (self.layout / "index.json").exists():
            with self._index_lock():
                if not (self.layout / "index.json").exists():
                    self._write_index({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []})

    # ---- blobs -------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives (whether or not it exists)."""
        algorithm, _, hexpart = digest.partition(":")
        if algorithm != "sha256" or not is_digest(digest):
            raise PybuildError(f"unsupported or malformed digest {digest!r}")
        return self.blobs / hexpart

    def has_blob(self, digest: str) -> bool:
        """True when the blob is present."""
        return self.blob_path(digest).exists()

    def open_blob(self, digest: str) -> VerifiedBlob:
        """Open a blob for reading; it is verified as it streams (see :class:`VerifiedBlob`)."""
        try:
            return VerifiedBlob(self.blob_path(digest), digest)
        except FileNotFoundError:
            raise StoreCorrupt(f"blob {digest} is missing from the store; run pybuild fsck") from None

    @contextlib.contextmanager
    def reading_blob(self, digest: str) -> Iterator[VerifiedBlob]:
        """A blob for a decoder (gunzip, untar) that may stop early or fail on bad bytes.

        On leaving, what the decoder left unread is hashed too.  When the decoder failed,
        the blob is checked before the error is passed on: a corrupt blob is reported as
        :class:`BlobCorrupt` (with the decoder's error as its cause), not as a bad archive.
        """
        blob = self.open_blob(digest)
        try:
            try:
                yield blob
            except BlobCorrupt:
                raise
            except (BadArchive, EOFError) as err:
                try:
                    blob.finish()
                except BlobCorrupt as corrupt:
                    raise corrupt from err
                raise
            blob.finish()
        finally:
            blob.close()

    def read_blob(self, digest: str) -> bytes:
        """Read a small blob whole (manifests, configs), verifying its digest."""
        with self.open_blob(digest) as f:
            return f.read()

    def read_json(self, digest: str) -> dict[str, Any]:
        """Read and parse a JSON blob."""
        try:
            return json.loads(self.read_blob(digest))
        except json.JSONDecodeError as err:
            raise StoreCorrupt(f"blob {digest} is not valid JSON: {err}") from None

    def blob_writer(self, expected_digest: str | None = None, expected_size: int | None = None, *,
                    what: str | None = None) -> BlobWriter:
        """A :class:`BlobWriter`; use as a context manager and call ``commit()``.

        ``what`` names the blob in errors ("layer"); the default is its digest.
        """
        return BlobWriter(self, expected_digest, expected_size, what)

    def put_bytes(self, data: bytes, media_type: str) -> oci.Descriptor:
        """Store a small blob and return its descriptor."""
        digest = oci.sha256_digest(data)
        if not self.has_blob(digest):
            with self.blob_writer(digest) as writer:
                writer.write(data)
                writer.commit()
        return oci.Descriptor(media_type, digest, len(data))

    def put_json(self, obj: Any, media_type: str) -> oci.Descriptor:
        """Store ``obj`` as canonical JSON and return its descriptor."""
        return self.put_bytes(oci.canonical_json(obj), media_type)

    def _install(self, temp_path: Path, digest: str) -> None:
        final = self.blob_path(digest)
        if final.exists():
            temp_path.unlink()
            return
        os.replace(temp_path, final)
        _fsync_dir(final.parent)

    def temp_dir(self, prefix: str) -> Path:
        """A new private directory under ``$ROOT/tmp`` (the caller removes it)."""
        path = self.tmp / tempfiles.temp_name(prefix)
        path.mkdir(mode=0o700)
        return path

    def sweep_temp(self) -> list[Path]:
        """Remove temp files and dirs left by dead processes; return what was removed."""
        self._swept = True
        return tempfiles.sweep(self.tmp, unnamed_after=_STALE_TEMP_SECONDS)

    def _sweep_once(self) -> None:
        """Sweep ``$ROOT/tmp`` the first time this process takes a store lock to write."""
        if not self._swept:
            self.sweep_temp()

    # ---- locks -------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, name: str, mode: int) -> Iterator[None]:
        fd = os.open(self._locks / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _index_lock(self) -> Iterator[None]:
        with self._lock("index.lock", fcntl.LOCK_EX):
            self._sweep_once()
            yield

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold while writing blobs that no tag reaches yet, so prune leaves them alone.

        Every command that writes to the store takes this lock or the index lock; the
        first time, it sweeps what dead processes left in ``$ROOT/tmp``.
        """
        with self._lock("gc.lock", fcntl.LOCK_SH):
            self._sweep_once()
            yield

    # ---- index and tags ----------------------------------------------------------

    def read_index(self) -> dict[str, Any]:
        """The parsed ``index.json``."""
        try:
            return json.loads((self.layout / "index.json").read_bytes())
        except (OSError, json.JSONDecodeError) as err:
            raise StoreCorrupt(f"{self.layout / 'index.json'} is unreadable: {err}") from None

    def _write_index(self, index: dict[str, Any]) -> None:
        _atomic_write(self.layout / "index.json", json.dumps(index, indent=2).encode() + b"\n", self.tmp)

    def tags(self) -> list[tuple[Reference, oci.Descriptor]]:
        """Every named entry of the index as (reference, manifest descriptor)."""
        out = []
        for entry in self.read_index().get("manifests", []):
            name = (entry.get("annotations") or {}).get(oci.ANNOTATION_REF_NAME)
            if name:
                out.append((parse(name), oci.Descriptor.from_json(entry)))
        return out

    def entries(self) -> list[tuple[Reference | None, oci.Descriptor]]:
        """Every index entry as (reference or None for an untagged image, descriptor)."""
        out: list[tuple[Reference | None, oci.Descriptor]] = []
        for entry in self.read_index().get("manifests", []):
            name = _ref_name(entry)
            out.append((parse(name) if name else None, oci.Descriptor.from_json(entry)))
        return out

    def keep(self, manifest: oci.Descriptor) -> None:
        """Keep an untagged image reachable (docker's ``<none>``) unless an entry has it already."""
        with self._index_lock():
            index = self.read_index()
            if any(m.get("digest") == manifest.digest for m in index.get("manifests", [])):
                return
            index.setdefault("manifests", []).append(
                oci.Descriptor(manifest.media_type, manifest.digest, manifest.size, platform=manifest.platform).to_json())
            self._write_index(index)

    def remove_manifest(self, digest: str) -> list[str]:
        """Drop every index entry (named or not) for a manifest; return the names dropped."""
        with self._index_lock():
            index = self.read_index()
            manifests = index.get("manifests", [])
            dropped = [m for m in manifests if m.get("digest") == digest]
            index["manifests"] = [m for m in manifests if m.get("digest") != digest]
            self._write_index(index)
        return [name for name in map(_ref_name, dropped) if name]

    def tag(self, ref: Reference | str, manifest: oci.Descriptor) -> None:
        """Point ``ref`` at ``manifest`` (replacing what it pointed at)."""
        ref = parse(ref) if isinstance(ref, str) else ref
        if not self.has_blob(manifest.digest):
            raise ImageNotFound(f"cannot tag {ref.familiar()}: manifest {manifest.digest} is not in the store")
        name = ref.familiar()
        entry = oci.Descriptor(manifest.media_type, manifest.digest, manifest.size,
                               annotations={oci.ANNOTATION_REF_NAME: name}, platform=manifest.platform).to_json()
        with self._index_lock():
            index = self.read_index()
            if any(_ref_name(m) == name and m.get("digest") == manifest.digest for m in index.get("manifests", [])):
                return
            index["manifests"] = [m for m in index.get("manifests", [])
                                  if _ref_name(m) != name and not (_ref_name(m) is None and m.get("digest") == manifest.digest)]
            index["manifests"].append(entry)
            self._write_index(index)

    def untag(self, ref: Reference | str) -> bool:
        """Remove a name; return whether it existed."""
        name = (parse(ref) if isinstance(ref, str) else ref).familiar()
        with self._index_lock():
            index = self.read_index()
            kept = [m for m in index.get("manifests", []) if _ref_name(m) != name]
            if len(kept) == len(index.get("manifests", [])):
                return False
            index["manifests"] = kept
            self._write_index(index)
            return True

    def resolve(self, name: str) -> oci.Descriptor:
        """Find a manifest by name, ``name@digest``, image ID or unique ID prefix."""
        tags = self.entries()
        candidate = _as_reference(name)
        if candidate is not None:
            if candidate.digest:
                if self.has_blob(candidate.digest):
                    for _, desc in tags:
                        if desc.digest == candidate.digest:
                            return desc
                    return oci.Descriptor(oci.OCI_MANIFEST, candidate.digest, self.blob_path(candidate.digest).stat().st_size)
            else:
                for ref, desc in tags:
                    if ref == candidate:
                        return desc
        by_id = self._resolve_id(name, tags)
        if by_id is not None:
            return by_id
        raise ImageNotFound(f"no image {name!r} in the store; see 'pybuild images' (or pull it)")

    def _resolve_id(self, text: str, tags: list[tuple[Reference | None, oci.Descriptor]]) -> oci.Descriptor | None:
        hexpart = text[len("sha256:"):] if text.startswith("sha256:") else text
        if not (1 <= len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart)) or len(hexpart) < 4:
            return None
        matches: dict[str, oci.Descriptor] = {}
        for _, desc in tags:
            config = self._config_digest(desc)
            if config and config[len("sha256:"):].startswith(hexpart):
                matches.setdefault(config, desc)
            elif desc.digest[len("sha256:"):] == hexpart:
                matches.setdefault(desc.digest, desc)
        if len(matches) > 1:
            raise ImageNotFound(f"image ID prefix {text!r} is ambiguous; give more digits")
        return next(iter(matches.values()), None)

    def _config_digest(self, desc: oci.Descriptor) -> str | None:
        if desc.media_type in oci.INDEX_TYPES:  # an index's image ID is that of its host-platform image
            try:
                desc = select_platform(self.read_json(desc.digest))
            except PybuildError:
                return None
        if desc.media_type not in oci.MANIFEST_TYPES:
            return None
        try:
            return self.read_json(desc.digest)["config"]["digest"]
        except (StoreCorrupt, KeyError):
            return None

    def image(self, name: str, platform: str | None = None) -> StoredImage:
        """Load an image (manifest + config); an index resolves to the host platform."""
        return self.image_at(self.resolve(name), platform)

    def image_at(self, desc: oci.Descriptor, platform: str | None = None) -> StoredImage:
        """Load the image a manifest (or index) descriptor points at."""
        manifest = self.read_json(desc.digest)
        media_type = manifest.get("mediaType") or desc.media_type
        if media_type in oci.INDEX_TYPES or "manifests" in manifest:
            from .platform import select_descriptor

            desc = select_descriptor(manifest, platform)
            manifest = self.read_json(desc.digest)
        config = self.read_json(manifest["config"]["digest"])
        return StoredImage(desc, manifest, config)

    def commit_image(self, config: dict[str, Any], layers: list[oci.Descriptor],
                     tags: Iterable[Reference | str] = ()) -> StoredImage:
        """Write config and manifest for ``layers`` (already stored) and apply ``tags``."""
        config_desc = self.put_json(config, oci.OCI_CONFIG)
        manifest = oci.make_manifest(config_desc, layers)
        manifest_desc = self.put_json(manifest, oci.OCI_MANIFEST)
        for ref in tags:
            self.tag(ref, manifest_desc)
        return StoredImage(manifest_desc, manifest, config)

    # ---- garbage collection and verification -------------------------------------

    def reachable(self, roots: Iterable[str] = ()) -> set[str]:
        """Every blob digest reachable from the index and from ``roots`` (manifest digests)."""
        seen: set[str] = set()
        pending = [oci.Descriptor.from_json(m).digest for m in self.read_index().get("manifests", [])]
        pending.extend(roots)
        while pending:
            digest = pending.pop()
            if digest in seen or not self.has_blob(digest):
                continue
            seen.add(digest)
            doc = _try_json(self.blob_path(digest))
            if isinstance(doc, dict):
                pending.extend(_children(doc))
        return seen

    def prune(self, keep: Iterable[str] = ()) -> list[str]:
        """Delete blobs no tag (and no digest in ``keep``) reaches; return their digests."""
        removed = []
        with self._lock("gc.lock", fcntl.LOCK_EX):
            self.sweep_temp()
            live = self.reachable(keep)
            for path in self.blobs.iterdir():
                digest = "sha256:" + path.name
                if digest not in live:
                    path.unlink()
                    removed.append(digest)
        return removed

    def fsck(self) -> FsckReport:
        """Re-hash every blob and check every reference from the index down."""
        report = FsckReport()
        for path in sorted(self.blobs.iterdir()):
            report.blobs_checked += 1
            if path.name != _hash_file(path):
                report.damaged["sha256:" + path.name] = "corrupt"
                report.problems.append(f"blob sha256:{path.name} is corrupt: its content does not match its digest")
        try:
            index = self.read_index()
        except StoreCorrupt as err:
            report.problems.append(str(err))
            return report
        try:
            layout = json.loads((self.layout / "oci-layout").read_bytes())
            if layout.get("imageLayoutVersion") != oci.OCI_LAYOUT_VERSION:
                report.problems.append("oci-layout has an unexpected imageLayoutVersion")
        except (OSError, json.JSONDecodeError):
            report.problems.append("oci-layout is missing or unreadable")
        for entry in index.get("manifests", []):
            report.images_checked += 1
            label = _ref_name(entry) or entry.get("digest", "?")
            self._check_tree(oci.Descriptor.from_json(entry), label, report)
        return report

    def _check_tree(self, desc: oci.Descriptor, label: str, report: FsckReport) -> None:
        path = self.blob_path(desc.digest)
        if not path.exists():
            report.damaged.setdefault(desc.digest, "missing")
            report.problems.append(f"{label}: blob {desc.digest} ({desc.media_type}) is missing")
            return
        if path.stat().st_size != desc.size:
            report.problems.append(f"{label}: blob {desc.digest} has size {path.stat().st_size}, descriptor says {desc.size}")
        if desc.media_type in oci.MANIFEST_TYPES + oci.INDEX_TYPES:
            doc = _try_json(path)
            if not isinstance(doc, dict):
                report.problems.append(f"{label}: manifest {desc.digest} is not valid JSON")
                return
            for child in doc.get("manifests", []) + doc.get("layers", []) + ([doc["config"]] if "config" in doc else []):
                self._check_tree(oci.Descriptor.from_json(child), label, report)


    def repair(self, damaged: dict[str, str], refetch: Refetch) -> list[str]:
        """Drop damaged blobs, fetch them again where ``refetch`` can, drop images left incomplete.

        ``damaged``: digest -> what is wrong ("corrupt", "missing"), as :meth:`fsck`
        reports.  ``refetch(desc)`` stores the blob again (verified) and returns where it
        came from, or None.  Holds the GC lock exclusively, as prune does.  Returns one
        line per blob fetched again, per image removed and per unused blob dropped.
        """
        lines: list[str] = []
        with self._lock("gc.lock", fcntl.LOCK_EX):
            self._sweep_once()
            entries = self.read_index().get("manifests", [])
            trees = [list(self._tree(oci.Descriptor.from_json(e), "manifest", damaged)) for e in entries]
            described = {d.digest: d for tree in trees for d, _ in tree if d.digest in damaged}
            for digest in damaged:
                with contextlib.suppress(FileNotFoundError):
                    self.blob_path(digest).unlink()
            fetched = {digest: origin for digest, desc in sorted(described.items())
                       if (origin := refetch(desc)) is not None}
            lines += [f"dropped blob {digest}: corrupt, and no image uses it"
                      for digest in sorted(set(damaged) - set(described))]
            doomed: list[dict[str, Any]] = []
            for entry, tree in zip(entries, trees):
                label = _ref_name(entry) or entry.get("digest", "?")
                hit = [(d, kind) for d, kind in tree if d.digest in damaged]
                lines += [f"{label}: {kind} {d.digest} was {damaged[d.digest]}; fetched it again from "
                          f"{fetched[d.digest]}" for d, kind in hit if d.digest in fetched]
                lost = [f"{kind} {d.digest} ({damaged[d.digest]})" for d, kind in hit if d.digest not in fetched]
                if lost:
                    doomed.append(entry)
                    lines.append(f"{label}: removed: it lost its {', '.join(lost)}, and no registry is known to "
                                 f"hold it; pull, load or build the image again")
            if doomed:
                with self._index_lock():
                    index = self.read_index()
                    index["manifests"] = [m for m in index.get("manifests", []) if m not in doomed]
                    self._write_index(index)
        return lines

    def _tree(self, desc: oci.Descriptor, kind: str, damaged: dict[str, str]) -> Iterator[tuple[oci.Descriptor, str]]:
        """``desc`` and every blob below it, with its kind; nothing below a corrupt or missing blob."""
        yield desc, "index" if desc.media_type in oci.INDEX_TYPES else kind
        if desc.digest in damaged or desc.media_type not in oci.MANIFEST_TYPES + oci.INDEX_TYPES \
                or not self.has_blob(desc.digest):
            return
        doc = _try_json(self.blob_path(desc.digest))
        if not isinstance(doc, dict):
            return
        for child in doc.get("manifests", []):
            yield from self._tree(oci.Descriptor.from_json(child), "manifest", damaged)
        if isinstance(doc.get("config"), dict):
            yield oci.Descriptor.from_json(doc["config"]), "config"
        for layer in doc.get("layers", []):
            yield oci.Descriptor.from_json(layer), "layer"


Refetch = Callable[[oci.Descriptor], "str | None"]


def select_platform(index: dict[str, Any], platform: str | None = None) -> oci.Descriptor:
    """Pick the manifest for ``platform`` (``os/arch[/variant]``, default the host's) from an index."""
    wanted_os, wanted_arch, wanted_variant = _platform_parts(platform or host_platform())
    for entry in oci.index_manifests(index):
        plat = entry.get("platform") or {}
        if plat.get("os") == wanted_os and plat.get("architecture") == wanted_arch and (
                wanted_variant is None or plat.get("variant") == wanted_variant):
            return oci.Descriptor.from_json(entry)
    available = ", ".join(
        "/".join(filter(None, [(e.get("platform") or {}).get(k) for k in ("os", "architecture", "variant")]))
        for e in oci.index_manifests(index)) or "none"
    raise ImageNotFound(f"no manifest for platform {platform or host_platform()} (available: {available})")


def host_platform() -> str:
    """The host's platform as ``os/arch`` in OCI terms."""
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)
    return f"linux/{arch}"


def _platform_parts(text: str) -> tuple[str, str, str | None]:
    parts = text.split("/")
    if len(parts) not in (2, 3):
        raise PybuildError(f"invalid platform {text!r}; expected os/arch[/variant], e.g. linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _as_reference(name: str) -> Reference | None:
    try:
        return parse(name)
    except PybuildError:
        return None


def _ref_name(entry: dict[str, Any]) -> str | None:
    return (entry.get("annotations") or {}).get(oci.ANNOTATION_REF_NAME)


def _children(doc: dict[str, Any]) -> list[str]:
    out = [d["digest"] for d in doc.get("manifests", []) + doc.get("layers", []) if "digest" in d]
    if isinstance(doc.get("config"), dict) and "digest" in doc["config"]:
        out.append(doc["config"]["digest"])
    return out


def _try_json(path: Path) -> Any:
    if path.stat().st_size > 4 << 20:
        return None
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    buf = bytearray(_CHUNK * 4)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes, tmp_dir: Path) -> None:
    temp = tmp_dir / tempfiles.temp_name(path.name)
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
