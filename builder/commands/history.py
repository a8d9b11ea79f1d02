"""``pybuild history NAME``: an image's history, newest first, like ``docker history``."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="IMAGE")
    parser.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only image IDs")


def run(args: argparse.Namespace) -> int:
    from ._common import human_size, open_store, print_table, short_id, time_ago

    store = open_store(args)
    image = store.image(args.name)
    layers = iter(image.layers)
    rows = []
    history = image.config.get("history") or [{} for _ in image.layers]
    for entry in history:
        size = 0 if entry.get("empty_layer") else next(layers).size
        rows.append((entry, size))
    if args.quiet:
        print(image.id if args.no_trunc else short_id(image.id))
        return 0
    table = []
    for position, (entry, size) in enumerate(reversed(rows)):
        created_by = entry.get("created_by", "")
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        shown_id = (image.id if args.no_trunc else short_id(image.id)) if position == 0 else "<missing>"
        table.append([shown_id, time_ago(entry.get("created")), created_by, human_size(size), entry.get("comment", "")])
    print_table(table, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"])
    return 0
