"""``pull``: a registry image into the local store, tagged with the name it was pulled by."""

from __future__ import annotations

from dataclasses import dataclass

from .. import oci
from ..image import StoreSink
from ..reference import Reference, parse
from ..store import Store, StoredImage
from .client import RegistryClient
from .image import RemoteSource, enforce_policy
from .origins import BlobOrigins
from .transfer import Reporter, transfer


@dataclass
class PullResult:
    """What a pull produced: the reference, the digest it resolved to, the stored image."""

    ref: Reference
    digest: str
    image: StoredImage


def pull_image(store: Store, name: str | Reference, *, platform: str | None = None, insecure: bool = False,
               jobs: int | None = None, reporter: Reporter | None = None, policy: str | None = None) -> PullResult:
    """Pull ``name`` (tag or digest) for ``platform`` (default: the host's) into ``store``.

    The verification policy (the file ``policy``, else the default one, see
    :mod:`registry.signing.policy`) is applied to the digest the reference resolves
    to before anything is stored; the blobs copied are those of that very digest.
    The image manifest is stored byte for byte as served; every blob is verified
    while it streams and blobs the store has are not fetched.
    """
    ref = parse(name) if isinstance(name, str) else name
    client = RegistryClient(ref.registry, ref.repository, insecure=insecure)
    source = RemoteSource(client, ref, platform)
    enforce_policy(policy, ref, source)
    manifest = source.manifest()
    refs = [ref] if ref.tag or ref.digest == manifest.digest else []
    sink = StoreSink(store)
    with store.transaction():
        transfer(source, sink, refs, jobs=jobs, reporter=reporter)
    BlobOrigins(store.root).add([d.digest for d in manifest.blobs()], ref.registry, ref.repository)
    assert sink.written is not None
    desc = oci.Descriptor(manifest.media_type, sink.written.digest, sink.written.size)
    return PullResult(ref, source.digest, store.image_at(desc))

