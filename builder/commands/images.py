"""``pybuild images``: list images like ``docker images``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repository", nargs="?", help="only images of this repository")
    parser.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    parser.add_argument("--digests", action="store_true", help="show manifest digests")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate IDs")
    parser.add_argument("--format", default="table", help="table, json, or a Go template ('{{.Repository}}:{{.Tag}}', 'table {{.ID}}\t{{.Size}}')")
    parser.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="reference=GLOB, dangling=true|false, label=KEY[=VALUE] (repeatable)")


def run(args: argparse.Namespace) -> int:
    from registry import oci
    from registry.platform import of_config
    from registry.reference import parse

    from . import _format
    from ._common import human_size, open_store, print_table, short_id, time_ago

    filters = _format.parse_filters(args.filter, ("reference", "dangling", "label"))
    store = open_store(args)
    wanted = parse(args.repository, default_tag=False).name if args.repository else None
    rows: list[dict[str, Any]] = []
    for ref, desc in store.entries():
        if wanted and (ref is None or ref.name != wanted):
            continue
        entries = oci.image_manifests(store.read_json(desc.digest)) if desc.media_type in oci.INDEX_TYPES else []
        if len(entries) > 1:
            # a multi-platform image: the index digest is its ID (as docker's containerd store shows it)
            images = [store.image_at(oci.Descriptor.from_json(e)) for e in entries]
            image_id, size = desc.digest, sum(i.size for i in images)
        else:  # one image, or one image with its attestations: the image's own ID
            images = [store.image_at(desc)]
            image_id, size = images[0].id, images[0].size
        created = max((i.config.get("created", "") for i in images), default="")
        rows.append({
            "Repository": ref.familiar_name if ref else "<none>",
            "Tag": (ref.tag or "<none>") if ref else "<none>",
            "Digest": desc.digest,
            "ID": image_id,
            "CreatedAt": created,
            "CreatedSince": time_ago(created),
            "Size": size,
            "Platforms": [str(of_config(i.config) or "unknown") for i in images],
            "Labels": (images[0].config.get("config") or {}).get("Labels") or {},
            "Name": ref.familiar() if ref else "",
        })
    rows = _format.keep(rows, filters, {
        "reference": lambda row, v: bool(row["Name"]) and _format.reference_matches([row["Name"]], v),
        "dangling": lambda row, v: (row["Repository"] == "<none>") == (v.lower() == "true"),
        "label": lambda row, v: _format.label_matches(row["Labels"], v),
    })
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            shown = row["ID"] if args.no_trunc else short_id(row["ID"])
            if shown not in seen:
                seen.append(shown)
        for shown in seen:
            print(shown)
        return 0
    if args.format == "json":
        for row in rows:
            print(json.dumps({k: v for k, v in row.items() if k not in ("Labels", "Name")}))
        return 0
    if args.format != "table":
        shown = [dict(row, ID=row["ID"] if args.no_trunc else short_id(row["ID"]), Size=human_size(row["Size"]),
                      Labels=",".join(f"{k}={v}" for k, v in sorted(row["Labels"].items())),
                      CreatedAt=_docker_time(row["CreatedAt"]))
                 for row in rows]
        _format.render(args.format, shown, {"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"})
        return 0
    headers = ["REPOSITORY", "TAG"] + (["DIGEST"] if args.digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    table = [[row["Repository"], row["Tag"]] + ([row["Digest"]] if args.digests else [])
             + [row["ID"] if args.no_trunc else short_id(row["ID"]), row["CreatedSince"], human_size(row["Size"])]
             for row in rows]
    print_table(table, headers)
    return 0


def _docker_time(stamp: str) -> str:
    """docker's ``CreatedAt``: ``2026-11-28 23:03:01 +0000 UTC``."""
    from ._common import parse_time

    when = parse_time(stamp)
    if when is None:
        return ""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(when))
