"""``pybuild inspect NAME...``: images (as ``docker image inspect``) or containers (as
``docker container inspect``) as JSON; an image name wins, as with ``docker inspect``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="IMAGE|CONTAINER")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="which platform of a multi-platform image to describe (default: the host's)")
    parser.add_argument("-f", "--format", help="print one top-level field (e.g. Id, Config) instead of the whole JSON")
    parser.add_argument("--attestations", action="store_true",
                        help="print the in-toto attestations (SBOM, provenance) attached to each image, from the "
                             "store or (for a name not in it, or docker://REF) its registry")
    parser.add_argument("--insecure", action="store_true", help="with --attestations: allow plain HTTP registries")


def describe(store, name: str, platform: str | None = None) -> dict[str, Any]:
    """The docker-shaped description of one image (one platform of a multi-platform image)."""
    top = store.resolve(name)
    image = store.image_at(top, platform)
    ours = {top.digest, image.descriptor.digest}  # an index (platforms, attestations) names the image too
    names = [(ref, desc) for ref, desc in store.entries() if ref is not None and desc.digest in ours]
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
    if args.attestations:
        from registry.attestation import attestations_of

        found = [a for name in args.names for a in attestations_of(store, name, insecure=args.insecure)]
        print(json.dumps(found, indent=4))
        return 0
    results = [_one(args.root, store, name, args.platform) for name in args.names]
    if args.format:
        field = args.format.strip("{} .")
        for result in results:
            value = result.get(field)
            print(value if isinstance(value, str) else json.dumps(value))
        return 0
    print(json.dumps(results, indent=4))
    return 0


def _one(root: str, store, name: str, platform: str | None = None) -> dict[str, Any]:
    """The image called ``name`` (for ``platform``), else the container."""
    from registry.errors import ImageNotFound

    try:
        return describe(store, name, platform)
    except ImageNotFound as image_error:
        from runner import containers

        try:
            container = containers.lookup(root, name)
        except containers.NoSuchContainer:
            raise image_error from None
        from ._container_view import describe as describe_container

        return describe_container(container)
