"""``pybuild inspect NAME...``: image details as JSON shaped like ``docker image inspect``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="IMAGE")
    parser.add_argument("-f", "--format", help="a Go template, as docker's (e.g. '{{.Config.Labels}}', "
                        "'{{index .Config.Labels \"k\"}}', '{{json .Config}}')")


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
    results = [describe(store, name) for name in args.names]
    if args.format:
        from builder.gotemplate import Template

        template = Template(args.format)
        for result in results:
            print(template.render(go_typed(result)))
        return 0
    print(json.dumps(results, indent=4))
    return 0
