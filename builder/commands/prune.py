"""``pybuild prune``: drop untagged images no container uses, then every blob and snapshot no image reaches."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="accepted for docker compatibility; never prompts")


def run(args: argparse.Namespace) -> int:
    from registry import oci
    from runner.containers import images_in_use
    from runner.snapshots import Snapshots

    from ._common import open_store

    store = open_store(args)
    in_use = images_in_use(args.root)
    dropped = 0
    for ref, desc in store.entries():
        if ref is None and store.image_at(desc).id not in in_use:
            store.remove_manifest(desc.digest)
            dropped += 1
    removed = store.prune()
    keep_chains: set[str] = set()
    for _, desc in store.entries():
        keep_chains.update(oci.chain_ids(store.image_at(desc).diff_ids))
    snapshots = Snapshots(args.root).prune(keep_chains)
    print(f"removed {dropped} untagged images, {len(removed)} blobs and {len(snapshots)} snapshots")
    return 0
