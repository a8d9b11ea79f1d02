"""Image archives: docker-archive (``docker save``/``docker load``) and OCI archives.

Readers accept what docker (20.10 and 25+ layouts), podman and ``skopeo copy ...
oci-archive:`` write.  The writer produces one tar that is both a docker-archive
(``manifest.json``, ``repositories``) and an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256``), as docker 25+ does, so ``docker load``,
``podman load`` and ``skopeo`` all read it.  Blobs stream from the store straight
into the tar: nothing is held whole in memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any, BinaryIO, Iterator, Sequence

from base.removal import remove_tree

from . import oci
from .errors import BadArchive, PybuildError
from .image import ImageManifest
from .reference import Reference, parse
from .store import Store, StoredImage

FORMATS = ("docker-archive", "oci-archive")
_CHUNK = 1 << 20


@dataclass
class ArchivedImage:
    """One image found in an archive: a source for :func:`registry.image.copy_image`."""

    archive: "ArchiveReader"
    image_manifest: ImageManifest
    refs: list[Reference]
    blob_paths: dict[str, str]
    index_manifest: ImageManifest | None = None  # the index an OCI archive names, if it is one

    def manifest(self) -> ImageManifest:
        return self.image_manifest

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        return self.archive.open_member(self.blob_paths.get(desc.digest) or _blob_path(desc.digest))

    def index(self) -> ImageManifest | None:
        return self.index_manifest

    def child(self, desc: oci.Descriptor) -> "ArchivedImage":
        raw = self.archive._blob_bytes(desc.digest)
        manifest = ImageManifest(raw, json.loads(raw).get("mediaType") or desc.media_type)
        return ArchivedImage(self.archive, manifest, [], {d.digest: _blob_path(d.digest) for d in manifest.blobs()})


class ArchiveReader:
    """Reads images out of a docker-archive or OCI archive tar file (seekable)."""

    def __init__(self, path: str):
        self.path = path
        try:
            self._tar = tarfile.open(path, "r:*")
            self._members = {_clean(m.name): m for m in self._tar.getmembers() if m.isfile() or m.issym()}
        except (tarfile.TarError, EOFError, OSError) as err:
            raise BadArchive(f"{path}: not a readable tar archive ({err}); expected a docker-archive or OCI archive") from None

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def format(self) -> str:
        if "manifest.json" in self._members:
            return "docker-archive"
        if "index.json" in self._members and "oci-layout" in self._members:
            return "oci-archive"
        raise BadArchive(f"{self.path}: neither a docker-archive (no manifest.json) nor an OCI archive (no index.json/oci-layout)")

    def open_member(self, name: str) -> BinaryIO:
        member = self._members.get(_clean(name))
        if member is None:
            raise BadArchive(f"{self.path}: missing {name!r}")
        if member.issym():
            target = str(PurePosixPath(_clean(name)).parent / member.linkname)
            return self.open_member(_clean(target))
        stream = self._tar.extractfile(member)
        if stream is None:
            raise BadArchive(f"{self.path}: {name!r} is not a regular file")
        return stream  # type: ignore[return-value]

    def _json(self, name: str) -> Any:
        try:
            with self.open_member(name) as f:
                return json.loads(f.read())
        except json.JSONDecodeError as err:
            raise BadArchive(f"{self.path}: {name} is not valid JSON ({err})") from None

    def images(self, store: Store) -> list[ArchivedImage]:
        """Every image in the archive, ready to copy into ``store``."""
        if self.format == "docker-archive":
            return [self._docker_image(entry, store) for entry in self._json("manifest.json")]
        return self._oci_images()

    def _docker_image(self, entry: dict[str, Any], store: Store) -> ArchivedImage:
        try:
            config_path, layer_paths = entry["Config"], entry["Layers"]
        except (KeyError, TypeError):
            raise BadArchive(f"{self.path}: manifest.json entry lacks Config or Layers") from None
        blob_paths: dict[str, str] = {}
        config_desc = self._describe(config_path, oci.OCI_CONFIG, blob_paths)
        layers = [self._describe(p, _layer_media_type(self, p), blob_paths) for p in layer_paths]
        manifest = {
            "schemaVersion": 2,
            "mediaType": oci.OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        refs = [parse(tag) for tag in entry.get("RepoTags") or []]
        return ArchivedImage(self, ImageManifest(oci.canonical_json(manifest), oci.OCI_MANIFEST), refs, blob_paths)

    def _describe(self, path: str, media_type: str, blob_paths: dict[str, str]) -> oci.Descriptor:
        digest = _digest_from_path(path)
        size = self._members[_clean(path)].size if _clean(path) in self._members else None
        if digest is None or size is None:
            digest, size = self._hash_member(path)
        blob_paths[digest] = path
        return oci.Descriptor(media_type, digest, size)

    def _hash_member(self, path: str) -> tuple[str, int]:
        import hashlib

        digest, size = hashlib.sha256(), 0
        with self.open_member(path) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return "sha256:" + digest.hexdigest(), size

    def _oci_images(self) -> list[ArchivedImage]:
        index = self._json("index.json")
        out = []
        for entry in index.get("manifests", []):
            desc = oci.Descriptor.from_json(entry)
            raw = self._blob_bytes(desc.digest)
            doc = json.loads(raw)
            media_type = doc.get("mediaType") or desc.media_type
            index = None
            if media_type in oci.INDEX_TYPES:
                from .platform import host, select

                index = ImageManifest(raw, media_type)
                # the host's platform, else the first: an index of foreign platforms still loads
                entries = [e for e in doc.get("manifests") or [] if isinstance(e, dict)]
                matching = [e for e in entries if host().matches(e.get("platform"))]
                if not entries:
                    select(doc)  # raises: an empty index
                desc = oci.Descriptor.from_json((matching or entries)[0])
                raw = self._blob_bytes(desc.digest)
                media_type = json.loads(raw).get("mediaType") or desc.media_type
            manifest = ImageManifest(raw, media_type)
            blob_paths = {d.digest: _blob_path(d.digest) for d in manifest.blobs()}
            out.append(ArchivedImage(self, manifest, _oci_refs(entry), blob_paths, index))
        return out

    def _blob_bytes(self, digest: str) -> bytes:
        with self.open_member(_blob_path(digest)) as f:
            data = f.read()
        if oci.sha256_digest(data) != digest:
            raise BadArchive(f"{self.path}: blob {digest} is corrupt")
        return data


def _oci_refs(entry: dict[str, Any]) -> list[Reference]:
    annotations = entry.get("annotations") or {}
    for key in ("io.containerd.image.name", oci.ANNOTATION_REF_NAME):
        name = annotations.get(key)
        if not name:
            continue
        try:
            return [parse(name)]
        except PybuildError:
            continue  # a bare tag such as "latest" names no repository
    return []


def _layer_media_type(reader: ArchiveReader, path: str) -> str:
    with reader.open_member(path) as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return oci.OCI_LAYER_GZIP
    if magic == b"\x28\xb5\x2f\xfd":
        return oci.OCI_LAYER_ZSTD
    return oci.OCI_LAYER


def _digest_from_path(path: str) -> str | None:
    parts = PurePosixPath(_clean(path)).parts
    if len(parts) == 3 and parts[:2] == ("blobs", "sha256") and len(parts[2]) == 64:
        return "sha256:" + parts[2]
    return None


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _clean(name: str) -> str:
    return str(PurePosixPath("/" + name).relative_to("/")) if name not in ("", ".") else "."


class _Output:
    """The archive's file.  Once abandoned, late writes (the tar stream's finaliser) go nowhere."""

    def __init__(self, out: IO[bytes]):
        self._out: IO[bytes] | None = out

    def write(self, data: bytes) -> int:
        return self._out.write(data) if self._out is not None else len(data)

    def abandon(self) -> None:
        self._out = None


class ArchiveWriter:
    """Writes images from the store into one docker-archive + OCI layout tar."""

    def __init__(self, store: Store, out: IO[bytes], fmt: str = "docker-archive"):
        if fmt not in FORMATS:
            raise BadArchive(f"unknown archive format {fmt!r}; use one of {', '.join(FORMATS)}")
        self.store = store
        self.format = fmt
        self._out = _Output(out)
        self._tar = tarfile.open(fileobj=self._out, mode="w|", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
        self._written: set[str] = set()
        self._docker_manifest: list[dict[str, Any]] = []
        self._index: list[dict[str, Any]] = []
        self._repositories: dict[str, dict[str, str]] = {}
        self._add_bytes("oci-layout", json.dumps({"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}).encode())

    def add(self, image: StoredImage, refs: Sequence[Reference]) -> None:
        """Add one image (its blobs once, however many images share them) under ``refs``.

        A failure (a corrupt blob) leaves the archive unfinished: the caller removes it.
        """
        with self._abandon_on_failure():
            self._add_image_blobs(image)
            self._docker_entry(image, refs)
            media_type = (image.descriptor.media_type if image.descriptor.media_type in oci.MANIFEST_TYPES
                          else oci.OCI_MANIFEST)
            self._index_entries(oci.Descriptor(media_type, image.descriptor.digest, image.descriptor.size), refs)

    def add_index(self, index: oci.Descriptor, refs: Sequence[Reference], platform: str | None = None) -> StoredImage | None:
        """Add a multi-platform image: every platform, and the index named ``refs`` in ``index.json``.

        A docker-archive's ``manifest.json`` lists single images only, so there the
        image for ``platform`` (default: the host's) is listed; it is returned (else None).
        """
        with self._abandon_on_failure():
            for entry in self.store.read_json(index.digest).get("manifests", []):
                self._add_image_blobs(self.store.image_at(oci.Descriptor.from_json(entry)))
            self._add_blob(index)
            chosen = None
            if self.format == "docker-archive":
                chosen = self.store.image_at(index, platform)
                self._docker_entry(chosen, refs)
            self._index_entries(index, refs)
            return chosen

    @contextlib.contextmanager
    def _abandon_on_failure(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._out.abandon()
            raise

    def _add_image_blobs(self, image: StoredImage) -> None:
        for desc in [oci.manifest_config(image.manifest)] + image.layers + [image.descriptor]:
            self._add_blob(desc)

    def _docker_entry(self, image: StoredImage, refs: Sequence[Reference]) -> None:
        if self.format == "docker-archive":
            layer_paths = [self._docker_layer(layer, diff_id) for layer, diff_id in zip(image.layers, image.diff_ids)]
            self._docker_manifest.append({
                "Config": _blob_path(image.id),
                "RepoTags": [ref.familiar() for ref in refs if ref.tag],
                "Layers": layer_paths,
            })
        for ref in refs:
            if ref.tag:
                self._repositories.setdefault(ref.familiar_name, {})[ref.tag] = image.id.split(":", 1)[1]

    def _index_entries(self, desc: oci.Descriptor, refs: Sequence[Reference]) -> None:
        names: list[str | None] = [ref.familiar() for ref in refs] or [None]
        for name in names:
            annotations = {}
            if name:
                annotations = {oci.ANNOTATION_REF_NAME: name, "io.containerd.image.name": str(parse(name))}
            self._index.append(oci.Descriptor(desc.media_type, desc.digest, desc.size, annotations=annotations).to_json())

    def close(self) -> None:
        """Write the index files and finish the tar."""
        self._add_bytes("index.json", json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                                                  "manifests": self._index}).encode())
        if self.format == "docker-archive":
            self._add_bytes("manifest.json", json.dumps(self._docker_manifest).encode())
            if self._repositories:
                self._add_bytes("repositories", json.dumps(self._repositories).encode())
        self._tar.close()

    def _docker_layer(self, layer: oci.Descriptor, diff_id: str) -> str:
        """The archive path ``docker load`` reads a layer from.

        docker 20.10 cannot decompress zstd, so a zstd layer is also written
        uncompressed, under its diff_id (which is that content's digest).
        """
        if oci.layer_compression(layer.media_type) != "zstd":
            return _blob_path(layer.digest)
        if diff_id in self._written:
            return _blob_path(diff_id)
        from .layer import open_layer

        spool = self.store.temp_dir("save")
        try:
            plain = spool / "layer.tar"
            with self.store.reading_blob(layer.digest) as blob, open_layer(blob) as tar_stream, \
                    open(plain, "wb") as out:
                shutil.copyfileobj(tar_stream, out, _CHUNK)
            info = tarfile.TarInfo(_blob_path(diff_id))
            info.size = plain.stat().st_size
            info.mode = 0o444
            with open(plain, "rb") as f:
                self._tar.addfile(info, f)
            self._written.add(diff_id)
        finally:
            remove_tree(spool, ignore_errors=True)
        return _blob_path(diff_id)

    def _add_blob(self, desc: oci.Descriptor) -> None:
        if desc.digest in self._written:
            return
        self._written.add(desc.digest)
        path = self.store.blob_path(desc.digest)
        info = tarfile.TarInfo(_blob_path(desc.digest))
        info.size = path.stat().st_size
        info.mode = 0o444
        with self.store.open_blob(desc.digest) as f:
            self._tar.addfile(info, f)

    def _add_bytes(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o444
        self._tar.addfile(info, io.BytesIO(data))
