"""``push``: an image of the local store to a registry repository.

A push first asks whether the registry already has the manifest under the tag
(nothing to do) or by digest (only the tag is written); otherwise blobs go up
``jobs`` at a time, each skipped when present, mounted from a sibling
repository when one is known to hold it, uploaded otherwise; the manifest last.
"""

from __future__ import annotations

from ..image import StoreSource
from ..reference import Reference, parse
from ..store import Store
from .client import RegistryClient
from .image import RemoteSink
from .origins import BlobOrigins
from .transfer import Reporter, transfer


def push_image(store: Store, name: str, dest: str | Reference | None = None, *, insecure: bool = False,
               jobs: int | None = None, chunk_size: int | None = None, reporter: Reporter | None = None,
               platform: str | None = None) -> str:
    """Push the stored image ``name`` to ``dest`` (default: ``name`` itself); return the manifest digest."""
    target = dest if isinstance(dest, Reference) else parse(dest or name)
    source = StoreSource.named(store, name, platform)
    manifest = source.manifest()
    client = RegistryClient(target.registry, target.repository, push=True, insecure=insecure)
    origins = BlobOrigins(store.root)
    blobs = manifest.blobs()
    if not _already_there(client, target, manifest.digest, manifest.raw, manifest.media_type):
        mount_from = {d.digest: origins.repositories(d.digest, target.registry) for d in blobs}
        sink = RemoteSink(client, mount_from=mount_from, chunk_size=chunk_size)
        transfer(source, sink, [target], jobs=jobs, reporter=reporter)
    elif reporter is not None:
        for desc in blobs:
            reporter.finish(desc, "exists")
    origins.add([d.digest for d in blobs], target.registry, target.repository)
    return manifest.digest


def _already_there(client: RegistryClient, target: Reference, digest: str, raw: bytes, media_type: str) -> bool:
    """True when the registry has the manifest (tagging it where the tag differs)."""
    tagged = client.head_manifest(target.tag or digest)
    if tagged is not None and tagged.digest == digest:
        return True
    if target.tag and client.head_manifest(digest) is not None:
        client.put_manifest(target.tag, raw, media_type)
        return True
    return False
