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
    parser.add_argument("-f", "--format", help="a Go template, as docker's (e.g. '{{.Config.Labels}}', "
                        "'{{index .Config.Labels \"k\"}}', '{{json .Config}}')")
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


_MAPS = ("Labels", "ExposedPorts", "Volumes")
_LISTS = ("Env", "Cmd", "Entrypoint", "OnBuild", "Shell")


def go_typed(result: dict[str, Any]) -> dict[str, Any]:
    """The description with Go's types where printing differs: maps, nil maps and nil slices
    (``{{.Config.Labels}}`` is ``map[]`` and ``{{json .Config.Labels}}`` is ``null``, as docker)."""
    from builder.gotemplate import GoMap, GoNil

    out = dict(result)
    config = dict(out.get("Config") or {})
    for key in _MAPS:
        value = config.get(key)
        config[key] = GoMap(value) if value else GoNil("map[]")
    for key in _LISTS:
        if config.get(key) is None:
            config[key] = GoNil("[]")
    for key in ("Healthcheck", "User", "WorkingDir", "StopSignal"):
        config.setdefault(key, None if key == "Healthcheck" else "")
    out["Config"] = config
    for key in ("RepoTags", "RepoDigests"):
        if not out.get(key):
            out[key] = GoNil("[]")
    return out


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
        from builder.gotemplate import Template

        template = Template(args.format)
        for result in results:
            print(template.render(go_typed(result)))
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
