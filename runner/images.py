"""Image lookup for ``pybuild run``, with a cache that spares the run path the store.

Resolving a name through :class:`registry.store.Store` and checking snapshots costs
tens of milliseconds of imports.  The answer (image ID, container config, snapshot
dirs) only changes when ``store/index.json`` is replaced (every tag change replaces
it atomically), so it is cached in ``snapshots/run-cache.json`` keyed by that file's
inode, mtime and size; the snapshot dirs are checked to exist on every use.
"""

from __future__ import annotations

import json
import os
import sys

from registry.errors import ImageNotFound

CACHE_FILE = "run-cache.json"


def _index_key(root: str) -> list[int] | None:
    try:
        st = os.stat(os.path.join(root, "store", "index.json"))
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_mtime_ns, st.st_size]


def _load_store_image(root: str, name: str, pull: str = "missing"):
    """``(store, image)``, pulling the image when the store lacks it (``pull``: docker's
    ``--pull`` policy: ``missing``, ``always`` or ``never``)."""
    from registry.store import Store

    store = Store(root)
    if pull != "always":
        try:
            return store, store.image(name)
        except ImageNotFound:
            if pull == "never":
                err = ImageNotFound(f"no such image: {name} (--pull=never: pull, load or import it first)")
                err.exit_code = 125  # docker run's, for an image it may not pull
                raise err from None
    try:
        from registry.remote.pull import pull_image
    except ImportError:
        raise ImageNotFound(f"image {name} is not in the store and cannot be pulled; 'pybuild load' or 'pybuild import' it") from None
    if pull != "always":
        print(f"Unable to find image '{name}' locally", file=sys.stderr)
    return store, pull_image(store, name).image


def resolve(root: str, name: str, pull: str = "missing") -> tuple[str, dict, list[str]]:
    """``(image ID, container config, snapshot dirs bottom first)``; unpacks and pulls as needed."""
    cache_path = os.path.join(root, "snapshots", CACHE_FILE)
    key = _index_key(root)
    try:
        with open(cache_path) as fh:
            cache = json.load(fh)
    except (OSError, ValueError):
        cache = {}
    entry = cache.get("images", {}).get(name) if cache.get("index") == key else None
    if entry and pull != "always" and all(os.path.isdir(p) for p in entry["lowerdirs"]):
        return entry["id"], entry["config"], entry["lowerdirs"]
    from .snapshots import Snapshots

    store, image = _load_store_image(root, name, pull)
    lowerdirs = [str(p) for p in Snapshots(root).ensure(store, image)]
    entry = {"id": image.id, "config": image.config.get("config") or {}, "lowerdirs": lowerdirs}
    new_key = _index_key(root)
    images = cache.get("images", {}) if cache.get("index") == new_key else {}
    images[name] = entry
    tmp = f"{cache_path}.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump({"index": new_key, "images": images}, fh)
    os.replace(tmp, cache_path)
    return entry["id"], entry["config"], lowerdirs
