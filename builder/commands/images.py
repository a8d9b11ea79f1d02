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
    parser.add_argument("--format", choices=["table", "json"], default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    from registry import oci
    from registry.platform import of_config
    from registry.reference import parse

    from ._common import human_size, open_store, print_table, short_id, time_ago

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
            print(json.dumps(row))
        return 0
    headers = ["REPOSITORY", "TAG"] + (["DIGEST"] if args.digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    table = [[row["Repository"], row["Tag"]] + ([row["Digest"]] if args.digests else [])
             + [row["ID"] if args.no_trunc else short_id(row["ID"]), row["CreatedSince"], human_size(row["Size"])]
             for row in rows]
    print_table(table, headers)
    return 0
