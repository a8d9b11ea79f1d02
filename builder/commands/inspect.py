"""``pybuild inspect NAME...``: images (as ``docker image inspect``) or containers (as
``docker container inspect``) as JSON; an image name wins, as with ``docker inspect``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="IMAGE|CONTAINER")
    parser.add_argument("-f", "--format", help="print one top-level field (e.g. Id, Config) instead of the whole JSON")


def describe(store, name: str) -> dict[str, Any]:
    """The docker-shaped description of one image."""
    image = store.image(name)
    names = [(ref, desc) for ref, desc in store.entries() if ref is not None and desc.digest == image.descriptor.digest]
    config = image.config
    return {
        "Id": image.id,
        "RepoTags": [ref.familiar() for ref, _ in names if ref.tag],
        "RepoDigests": [f"{ref.familiar_name}@{image.descriptor.digest}" for ref, _ in names if ref.digest],
        "Parent": "",
        "Comment": _last_comment(config),
        "Created": config.get("created", ""),
        "Author": config.get("author", ""),
        "Config": config.get("config", {}),
        "Architecture": config.get("architecture", ""),
        "Variant": config.get("variant", ""),
        "Os": config.get("os", ""),
        "Size": image.size,
        "RootFS": {"Type": config.get("rootfs", {}).get("type", "layers"), "Layers": image.diff_ids},
        "Descriptor": {"mediaType": image.descriptor.media_type, "digest": image.descriptor.digest,
                       "size": image.descriptor.size},
        "Metadata": {"LastTagTime": ""},
    }


def _last_comment(config: dict[str, Any]) -> str:
    history = config.get("history") or []
    return history[-1].get("comment", "") if history else ""


def run(args: argparse.Namespace) -> int:
    from ._common import open_store

    store = open_store(args)
    results = [_one(args.root, store, name) for name in args.names]
    if args.format:
        field = args.format.strip("{} .")
        for result in results:
            value = result.get(field)
            print(value if isinstance(value, str) else json.dumps(value))
        return 0
    print(json.dumps(results, indent=4))
    return 0


def _one(root: str, store, name: str) -> dict[str, Any]:
    """The image called ``name``, else the container."""
    from registry.errors import ImageNotFound

    try:
        return describe(store, name)
    except ImageNotFound as image_error:
        from runner import containers

        try:
            container = containers.lookup(root, name)
        except containers.NoSuchContainer:
            raise image_error from None
        from ._container_view import describe as describe_container

        return describe_container(container)
