"""Where ``pybuild copy`` reads and writes images, and the copy itself.

Location syntax (as skopeo's, plus the store):

- ``docker://REF`` or a bare ``REF``: a registry repository;
- ``store:NAME``: the local store;
- ``docker-archive:FILE[:REF]`` / ``oci-archive:FILE[:REF]``: archive files;
- ``oci:DIR[:TAG]``: an OCI image layout directory (``org.opencontainers.image.ref.name`` = TAG).

Every pair is one :func:`copy_between` call: a source, a sink, :func:`transfer`.
Archives are written from a private temporary store (the archive writer reads
blobs from a store), then that store is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence

from base.removal import remove_tree

from .. import oci
from ..errors import BadArchive, DigestMismatch, ImageNotFound, PybuildError
from ..image import ImageManifest, ImageSink, ImageSource, StoreSink, StoreSource
from ..platform import select_descriptor
from ..reference import Reference, parse
from ..store import Store
from .origins import BlobOrigins
from .transfer import Reporter, transfer

KINDS = ("docker", "store", "docker-archive", "oci-archive", "oci")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Location:
    """A parsed location: its kind, the path (archives, layouts) and the name in it."""

    kind: str
    path: str = ""
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}{':' if self.path and self.name else ''}{self.name}"


def parse_location(text: str) -> Location:
    """Parse ``KIND:...`` (or a bare registry reference)."""
    if text.startswith("docker://"):
        return Location("docker", name=text[len("docker://"):])
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS:
        return Location("docker", name=text)
    if kind == "store":
        return Location("store", name=rest)
    path, _, name = rest.partition(":")
    if not path:
        raise PybuildError(f"{text!r}: {kind} needs a path, e.g. {kind}:/tmp/image")
    return Location(kind, path, name)


class OCIDirectory:
    """An OCI image layout directory as a source (by tag) and a sink (blobs + index entry)."""

    def __init__(self, path: str, tag: str, platform: str | None = None, pinned: oci.Descriptor | None = None):
        self.path = Path(path)
        self.tag = tag
        self.platform = platform
        self.pinned = pinned  # one manifest of an index
        self.blobs = self.path / "blobs" / "sha256"

    def _index(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "index.json").read_bytes())
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}
        except ValueError as err:
            raise BadArchive(f"{self.path}/index.json is not valid JSON: {err}") from None

    def _blob_bytes(self, digest: str) -> bytes:
        data = (self.blobs / digest.split(":", 1)[1]).read_bytes()
        if oci.sha256_digest(data) != digest:
            raise BadArchive(f"{self.path}: blob {digest} is corrupt")
        return data

    def _top(self) -> tuple[oci.Descriptor, bytes]:
        if self.pinned is not None:
            return self.pinned, self._blob_bytes(self.pinned.digest)
        entries = self._index().get("manifests", [])
        named = [e for e in entries if (e.get("annotations") or {}).get(oci.ANNOTATION_REF_NAME) == self.tag]
        chosen = named or (entries if not self.tag and len(entries) == 1 else [])
        if not chosen:
            raise ImageNotFound(f"no image {self.tag or '(untagged)'} in OCI layout {self.path}")
        desc = oci.Descriptor.from_json(chosen[0])
        return desc, self._blob_bytes(desc.digest)

    def index(self) -> ImageManifest | None:
        desc, raw = self._top()
        manifest = ImageManifest(raw, json.loads(raw).get("mediaType") or desc.media_type)
        return manifest if manifest.is_index else None

    def child(self, desc: oci.Descriptor) -> "OCIDirectory":
        return OCIDirectory(str(self.path), self.tag, pinned=desc)

    def manifest(self) -> ImageManifest:
        desc, raw = self._top()
        doc = json.loads(raw)
        if (doc.get("mediaType") or desc.media_type) in oci.INDEX_TYPES:
            desc = select_descriptor(doc, self.platform)
            raw = self._blob_bytes(desc.digest)
        return ImageManifest(raw, json.loads(raw).get("mediaType") or desc.media_type)

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        return open(self.blobs / desc.digest.split(":", 1)[1], "rb")

    def has_blob(self, desc: oci.Descriptor) -> bool:
        return (self.blobs / desc.digest.split(":", 1)[1]).exists()

    def write_blob(self, desc: oci.Descriptor, stream: BinaryIO) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        with self._temp() as temp:
            digest, size = hashlib.sha256(), 0
            with open(temp, "wb") as f:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            if "sha256:" + digest.hexdigest() != desc.digest or size != desc.size:
                raise DigestMismatch(f"blob {desc.digest} did not match its digest or size; nothing was written")
            os.replace(temp, self.blobs / desc.digest.split(":", 1)[1])

    def write_child(self, manifest: ImageManifest) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        with self._temp() as temp:
            temp.write_bytes(manifest.raw)
            os.replace(temp, self.blobs / manifest.digest.split(":", 1)[1])

    def write_manifest(self, manifest: ImageManifest, refs: Sequence[Reference]) -> None:
        self.write_child(manifest)
        layout = self.path / "oci-layout"
        if not layout.exists():
            layout.write_text(json.dumps({"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}))
        index = self._index()
        annotations = {oci.ANNOTATION_REF_NAME: self.tag} if self.tag else {}
        index["manifests"] = [e for e in index.get("manifests", [])
                              if not self.tag or (e.get("annotations") or {}).get(oci.ANNOTATION_REF_NAME) != self.tag]
        index["manifests"].append(oci.Descriptor(manifest.media_type, manifest.digest, len(manifest.raw),
                                                 annotations=annotations).to_json())
        with self._temp() as temp:
            temp.write_text(json.dumps(index))
            os.replace(temp, self.path / "index.json")

    @contextlib.contextmanager
    def _temp(self) -> Iterator[Path]:
        temp = self.path / f".tmp-{os.getpid()}-{secrets.token_hex(6)}"
        try:
            yield temp
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def copy_between(store: Store, src: str | Location, dst: str | Location, *, platform: str | None = None,
                 insecure: bool = False, jobs: int | None = None, chunk_size: int | None = None,
                 reporter: Reporter | None = None, policy: str | None = None,
                 all_platforms: bool = False, note: Callable[[str], None] | None = None) -> ImageManifest:
    """Copy one image from ``src`` to ``dst`` (any two locations); return its manifest.

    An image read from a registry must pass the verification policy (``policy``, else the
    default one) first, as skopeo copy does. With ``all_platforms`` a multi-platform
    source is copied whole and the index is returned; without it one platform is, and
    ``note`` is told so. A registry destination that
    already has the manifest gets only its tags; blobs that came from or went to a
    registry are recorded for later mounts.
    """
    if all_platforms and platform:
        raise PybuildError("--all copies every platform; leave out --platform")
    src = parse_location(src) if isinstance(src, str) else src
    dst = parse_location(dst) if isinstance(dst, str) else dst
    origins = BlobOrigins(store.root)
    with contextlib.ExitStack() as stack:
        source, src_ref = open_source(store, src, platform, insecure, stack, all_platforms)
        if src.kind == "docker":
            from .image import enforce_policy

            assert src_ref is not None
            enforce_policy(policy, src_ref, source)  # type: ignore[arg-type]
        index = getattr(source, "index", None)
        is_index = index is not None and index() is not None
        whole = all_platforms and is_index
        if dst.kind in ("docker-archive", "oci-archive"):
            manifest = _copy_to_archive(store, source, src_ref, dst, jobs, reporter, whole)
        else:
            sink, refs = _open_sink(store, dst, src_ref if src.kind == "docker" else None, insecure, chunk_size,
                                    origins, stack)
            manifest = index() if whole else source.manifest()  # type: ignore[misc]
            if getattr(sink, "has_manifest", None) and sink.has_manifest(manifest, refs):  # type: ignore[attr-defined]
                for desc in ([] if whole else manifest.blobs()):
                    if reporter is not None:
                        reporter.finish(desc, "exists")
            else:
                transfer(source, sink, refs, jobs=jobs, reporter=reporter, all_platforms=whole)
    if whole:
        return manifest
    if is_index and note is not None:
        from ..platform import host

        note(f"{src} is a multi-platform image: copied {platform or host()} only "
             f"(its own manifest, not the index); use --all to copy every platform")
    digests = [d.digest for d in manifest.blobs()]
    for loc in (src, dst):
        if loc.kind == "docker":
            ref = parse(loc.name)
            origins.add(digests, ref.registry, ref.repository)
    return manifest


def open_source(store: Store, loc: Location, platform: str | None, insecure: bool,
                stack: contextlib.ExitStack, all_platforms: bool = False) -> tuple[ImageSource, Reference | None]:
    """An image source for ``loc`` (archives stay open until ``stack`` closes) and its name."""
    if loc.kind == "docker":
        from .client import RegistryClient
        from .image import RemoteSource

        ref = parse(loc.name)
        return RemoteSource(RegistryClient(ref.registry, ref.repository, insecure=insecure), ref, platform), ref
    if loc.kind == "store":
        source = StoreSource.named(store, loc.name, platform, all_platforms)
        return source, _try_parse(loc.name)
    if loc.kind == "oci":
        return OCIDirectory(loc.path, loc.name, platform), None
    from ..archive import ArchiveReader

    reader = stack.enter_context(ArchiveReader(loc.path))
    images = reader.images(store)
    wanted = _try_parse(loc.name) if loc.name else None
    matches = [i for i in images if wanted is None or wanted in i.refs]
    if len(matches) != 1:
        names = ", ".join(r.familiar() for i in images for r in i.refs) or "untagged images"
        what = f"no image {loc.name!r}" if not matches else "several images"
        raise ImageNotFound(f"{loc.path}: {what} in the archive ({names}); name one as {loc.kind}:FILE:NAME")
    return matches[0], (matches[0].refs[0] if matches[0].refs else None)


def _open_sink(store: Store, loc: Location, remote_src: Reference | None, insecure: bool, chunk_size: int | None,
               origins: BlobOrigins, stack: contextlib.ExitStack) -> tuple[ImageSink, list[Reference]]:
    if loc.kind == "docker":
        from .client import RegistryClient
        from .image import RemoteSink

        ref = parse(loc.name)
        client = RegistryClient(ref.registry, ref.repository, push=True, insecure=insecure)
        sibling = [remote_src.repository] if remote_src is not None and remote_src.registry == ref.registry else []

        def mount_from(digest: str) -> list[str]:
            return sibling + [r for r in origins.repositories(digest, ref.registry) if r not in sibling]

        return RemoteSink(client, mount_from=mount_from, chunk_size=chunk_size), [ref]
    if loc.kind == "store":
        stack.enter_context(store.transaction())
        name = loc.name or (remote_src.familiar() if remote_src else "")
        return StoreSink(store), [parse(name)] if name else []
    if loc.kind == "oci":
        return OCIDirectory(loc.path, loc.name), []
    raise PybuildError(f"cannot write to {loc}")


def _copy_to_archive(store: Store, source: ImageSource, src_ref: Reference | None, dst: Location,
                     jobs: int | None, reporter: Reporter | None, whole: bool = False) -> ImageManifest:
    from ..archive import ArchiveWriter

    refs = [parse(dst.name)] if dst.name else ([src_ref] if src_ref else [])
    scratch_dir = store.temp_dir("copy")
    try:
        scratch = Store(scratch_dir)
        sink = StoreSink(scratch)
        manifest = transfer(source, sink, [], jobs=jobs, reporter=reporter, all_platforms=whole)
        assert sink.written is not None
        partial = Path(dst.path + f".partial-{os.getpid()}")
        try:
            with open(partial, "wb") as out:
                writer = ArchiveWriter(scratch, out, dst.kind)
                if whole:
                    written = oci.Descriptor(manifest.media_type, sink.written.digest, sink.written.size)
                    writer.add_index(written, refs)
                else:
                    writer.add(scratch.image_at(sink.written), refs)
                writer.close()
            os.replace(partial, dst.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return manifest
    finally:
        remove_tree(scratch_dir, ignore_errors=True)


def _try_parse(name: str) -> Reference | None:
    try:
        return parse(name)
    except PybuildError:
        return None
