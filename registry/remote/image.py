"""A registry repository as an image source and an image sink for :func:`registry.image.copy_image`."""

from __future__ import annotations

import json
import threading
from typing import BinaryIO, Callable, Sequence

from .. import oci
from ..image import ImageManifest
from ..platform import select_descriptor
from ..reference import Reference
from .client import RegistryClient, RemoteManifest
from .readahead import ReadAhead

_READ = 1 << 20
_READ_AHEAD_FROM = 4 << 20
_SEND = 4 << 20  # upload pieces: few syscalls and h11 events per blob, 16 MiB in flight at most


class RemoteSource:
    """An image at ``client``'s repository, by tag or digest; an index resolves to ``platform``."""

    def __init__(self, client: RegistryClient, ref: Reference, platform: str | None = None, pinned: str | None = None):
        self.client = client
        self.ref = ref
        self.platform = platform
        self.pinned = pinned  # one manifest of an index, by digest
        self.top: RemoteManifest | None = None
        self._manifest: ImageManifest | None = None

    def _top(self) -> RemoteManifest:
        if self.top is None:
            self.top = self.client.get_manifest(self.pinned or self.ref.digest or self.ref.tag or "latest")
        return self.top

    def index(self) -> ImageManifest | None:
        top = self._top()
        return ImageManifest(top.raw, top.media_type) if top.media_type in oci.INDEX_TYPES else None

    def child(self, desc: oci.Descriptor) -> "RemoteSource":
        return RemoteSource(self.client, self.ref, pinned=desc.digest)

    def manifest(self) -> ImageManifest:
        if self._manifest is None:
            top = self._top()
            chosen = top
            if top.media_type in oci.INDEX_TYPES:
                desc = select_descriptor(json.loads(top.raw), self.platform)
                chosen = self.client.get_manifest(desc.digest)
            self._manifest = ImageManifest(chosen.raw, chosen.media_type)
        return self._manifest

    @property
    def digest(self) -> str:
        """The digest the reference names (an index's, for a multi-platform image)."""
        self.manifest()
        assert self.top is not None
        return self.top.digest

    def open_blob(self, desc: oci.Descriptor) -> BinaryIO:
        stream = self.client.open_blob(desc)
        if desc.size <= _READ_AHEAD_FROM:
            return stream  # type: ignore[return-value]
        return ReadAhead(stream)  # type: ignore[return-value,arg-type]


class RemoteSink:
    """A repository to push into: blobs it has are skipped, blobs of sibling repositories mounted.

    ``mount_from`` lists repositories of the same registry to try mounting from
    (most likely first).  :meth:`has_blob` performs the mount, so a mounted blob is
    never read from the source.
    """

    def __init__(self, client: RegistryClient, *, mount_from: Callable[[str], list[str]] | None = None,
                 chunk_size: int | None = None):
        self.client = client
        self.mount_from = mount_from or (lambda digest: [])
        self.chunk_size = chunk_size
        self.mounted: dict[str, str] = {}
        self.digest: str | None = None
        self._locations: dict[str, str] = {}
        self._lock = threading.Lock()

    def has_manifest(self, manifest: ImageManifest, refs: Sequence[Reference]) -> bool:
        """True when the registry has the manifest under every tag (adding tags it lacks, no blobs needed)."""
        tags = [ref.tag for ref in refs if ref.tag]
        current = {tag: self.client.head_manifest(tag) for tag in tags}
        if tags and all(d is not None and d.digest == manifest.digest for d in current.values()):
            self.digest = manifest.digest
            return True
        if self.client.head_manifest(manifest.digest) is None:
            return False
        self.write_manifest(manifest, refs)
        return True

    def has_blob(self, desc: oci.Descriptor) -> bool:
        if self.client.head_blob(desc.digest) is not None:
            return True
        for repository in self.mount_from(desc.digest):
            if repository == self.client.repository:
                continue
            mounted, location = self.client.mount_blob(desc.digest, repository)
            with self._lock:
                if mounted:
                    self.mounted[desc.digest] = repository
                    return True
                if location:
                    self._locations[desc.digest] = location
                    break
        return False

    def write_blob(self, desc: oci.Descriptor, stream: BinaryIO) -> None:
        with self._lock:
            location = self._locations.pop(desc.digest, None)
        if desc.size <= _READ_AHEAD_FROM:
            self.client.upload_blob(desc, iter(lambda: stream.read(_READ), b""), chunk_size=self.chunk_size,
                                    location=location)
            return
        # The source verifies as it reads (a store blob hashes every byte and raises on the read that
        # reaches its end, before handing over the last bytes): reading ahead in a thread moves that
        # hashing off the sending thread, so it overlaps the upload instead of adding to it, while every
        # byte sent is still a byte hashed, and a corrupt blob never reaches the registry whole.
        with ReadAhead(stream, chunk=_SEND, depth=4) as ahead:
            self.client.upload_blob(desc, iter(lambda: ahead.read(_SEND), b""), chunk_size=self.chunk_size,
                                    location=location)

    def write_child(self, manifest: ImageManifest) -> None:
        self.client.put_manifest(manifest.digest, manifest.raw, manifest.media_type)

    def write_manifest(self, manifest: ImageManifest, refs: Sequence[Reference]) -> None:
        targets = [ref.tag or ref.digest for ref in refs if ref.tag or ref.digest] or [manifest.digest]
        for target in targets:
            assert target is not None
            self.digest = self.client.put_manifest(target, manifest.raw, manifest.media_type)



def enforce_policy(path: str | None, ref: Reference, source: RemoteSource) -> None:
    """Raise :class:`~registry.signing.errors.PolicyRejected` unless the verification policy
    (the file ``path``, else the default one) accepts the image ``source`` reads.

    ``source`` keeps the manifest it resolved, so what is checked is what gets copied.
    """
    from ..signing import policy as policies

    loaded = policies.load(path)
    if loaded is None:
        return
    from ..signing.cosign import read_signatures

    loaded.check(ref, lambda: (source.digest, read_signatures(source.client, source.digest)))
