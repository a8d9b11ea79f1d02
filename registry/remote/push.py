"""``push``: an image of the local store to a registry repository.

The registry is first asked whether it has the manifest under the tag (nothing to
do) or by digest (only the tag is written); otherwise blobs go up ``jobs`` at a
time, each skipped when present, mounted from a sibling repository when one is
known to hold it, uploaded otherwise; the manifest last.

A name that points at an image index (several platforms, or an image with its
attestations) is pushed whole by the one copy function: every manifest by digest,
then the index under the tag, unless ``platform`` picks one manifest.
"""

from __future__ import annotations

from ..reference import Reference, parse
from ..store import Store
from .locations import Location, copy_between
from .transfer import Reporter


def push_image(store: Store, name: str, dest: str | Reference | None = None, *, insecure: bool = False,
               jobs: int | None = None, chunk_size: int | None = None, reporter: Reporter | None = None,
               platform: str | None = None) -> str:
    """Push the stored image ``name`` to ``dest`` (default: ``name`` itself); return the manifest digest.

    A multi-platform image goes up whole (every platform, then the index) unless ``platform`` picks one.
    """
    target = dest if isinstance(dest, Reference) else parse(dest or name)
    manifest = copy_between(store, Location("store", name=name), Location("docker", name=str(target)),
                            platform=platform, insecure=insecure, jobs=jobs, chunk_size=chunk_size, reporter=reporter,
                            all_platforms=platform is None)
    return manifest.digest
