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


def _load_store_image(root: str, name: str, platform: str | None = None, pull: str = "missing"):
    """``(store, image)`` (for ``platform`` when given), pulling the image when the store lacks
    it (``pull``: docker's ``--pull`` policy: ``missing``, ``always`` or ``never``)."""
    from registry.store import Store

    store = Store(root)
    if pull != "always":
        try:
            return store, store.image(name, platform)
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
    return store, pull_image(store, name, platform=platform).image


def check_platform(name: str, image_platform: str | None, wanted: str | None) -> None:
    """docker's rules: a requested platform must match; an unrequested foreign one gets a warning.

    Either way, a foreign platform needs emulation (one line saying what to install).
    """
    from registry import platform as platforms

    from . import emulation
    from .errors import RunError

    if image_platform is None:
        return
    actual = platforms.parse(image_platform)
    if wanted is not None:
        requested = platforms.parse(wanted)
        if requested != actual:
            raise RunError(f"image with reference {name} was found but does not match the specified platform: "
                                f"wanted {requested}, actual: {actual}")
    elif actual != platforms.host():
        print(f"WARNING: The requested image's platform ({actual}) does not match the detected host platform "
              f"({platforms.host()}) and no specific platform was requested", file=sys.stderr)
    emulation.require(actual)


def resolve(root: str, name: str, platform: str | None = None, pull: str = "missing") -> tuple[str, dict, list[str]]:
    """``(image ID, container config, snapshot dirs bottom first)``; unpacks and pulls as needed.

    ``platform`` picks one manifest of a multi-platform image (default: the host's); ``pull``
    is docker's ``--pull`` policy.
    """
    cache_path = os.path.join(root, "snapshots", CACHE_FILE)
    key = _index_key(root)
    try:
        with open(cache_path) as fh:
            cache = json.load(fh)
    except (OSError, ValueError):
        cache = {}
    cache_name = name if platform is None else f"{name} {platform}"
    entry = cache.get("images", {}).get(cache_name) if cache.get("index") == key else None
    if entry and pull != "always" and all(os.path.isdir(p) for p in entry["lowerdirs"]):
        check_platform(name, entry.get("platform"), platform)
        return entry["id"], entry["config"], entry["lowerdirs"]
    from registry.platform import of_config

    from .snapshots import Snapshots

    store, image = _load_store_image(root, name, platform, pull)
    image_platform = of_config(image.config)
    check_platform(name, str(image_platform) if image_platform else None, platform)
    lowerdirs = [str(p) for p in Snapshots(root).ensure(store, image)]
    entry = {"id": image.id, "config": image.config.get("config") or {}, "lowerdirs": lowerdirs,
             "platform": image_platform and str(image_platform)}
    new_key = _index_key(root)
    images = cache.get("images", {}) if cache.get("index") == new_key else {}
    images[cache_name] = entry
    tmp = f"{cache_path}.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump({"index": new_key, "images": images}, fh)
    os.replace(tmp, cache_path)
    return entry["id"], entry["config"], lowerdirs
