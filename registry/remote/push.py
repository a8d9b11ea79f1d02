"""``push``: an image of the local store to a registry repository.

The registry is first asked whether it has the manifest under the tag (nothing to
do) or by digest (only the tag is written); otherwise blobs go up ``jobs`` at a
time, each skipped when present, mounted from a sibling repository when one is
known to hold it, uploaded otherwise; the manifest last.

A name that points at an image index whose manifests are all in the store (an image
built with attestations) is pushed whole: every manifest by digest, then the index
under the tag.  Otherwise the manifest for ``platform`` is pushed.
"""

from __future__ import annotations

import json

from .. import oci
from ..reference import Reference, parse
from ..store import Store
from .locations import Location, copy_between
from .transfer import Reporter


def push_image(store: Store, name: str, dest: str | Reference | None = None, *, insecure: bool = False,
               jobs: int | None = None, chunk_size: int | None = None, reporter: Reporter | None = None,
               platform: str | None = None) -> str:
    """Push the stored image ``name`` to ``dest`` (default: ``name`` itself); return the manifest digest."""
    target = dest if isinstance(dest, Reference) else parse(dest or name)
    top = store.resolve(name)
    if top.media_type in oci.INDEX_TYPES and platform is None:
        children = [oci.Descriptor.from_json(m) for m in store.read_json(top.digest).get("manifests", [])]
        if children and all(store.has_blob(child.digest) for child in children):
            for child in children:
                copy_between(store, Location("store", name=f"{target.name}@{child.digest}"),
                             Location("docker", name=f"{target.name}@{child.digest}"), insecure=insecure, jobs=jobs,
                             chunk_size=chunk_size, reporter=reporter)
            from .client import RegistryClient

            client = RegistryClient(target.registry, target.repository, push=True, insecure=insecure)
            raw = store.read_blob(top.digest)
            return client.put_manifest(target.tag or target.digest or "latest", raw,
                                       json.loads(raw).get("mediaType") or top.media_type)
    manifest = copy_between(store, Location("store", name=name), Location("docker", name=str(target)),
                            platform=platform, insecure=insecure, jobs=jobs, chunk_size=chunk_size, reporter=reporter)
    return manifest.digest
