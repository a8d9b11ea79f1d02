"""``pybuild prune``: drop untagged images no container uses, then every blob and snapshot no image reaches."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.store import Store


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="accepted for docker compatibility; never prompts")


def run(args: argparse.Namespace) -> int:
    from runner.containers import images_in_use

    from ._common import open_store

    store = open_store(args)
    result = prune_images(store, args.root, images_in_use(args.root))
    dropped = sum(1 for action, _ in result.done if action == "Deleted")
    print(f"removed {dropped} untagged images, {len(result.blobs)} blobs and {len(result.snapshots)} snapshots")
    return 0


class PruneResult:
    """What a prune did: docker's ``("Untagged"|"Deleted", what)`` pairs, the blobs and
    snapshots removed, and the bytes of blobs freed."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []
        self.blobs: list[str] = []
        self.snapshots: list[str] = []
        self.space = 0


def prune_images(store: Store, root: str, in_use: set[str], dangling_only: bool = True) -> PruneResult:
    """Drop images no container uses (only untagged ones unless ``dangling_only`` is false,
    docker's ``image prune -a``), then the blobs and snapshots nothing reaches any more."""
    from registry import oci
    from runner.snapshots import Snapshots

    result = PruneResult()
    groups: dict[str, tuple[oci.Descriptor, list]] = {}
    for ref, desc in store.entries():
        groups.setdefault(desc.digest, (desc, []))[1].append(ref)
    for desc, refs in groups.values():
        named = [ref for ref in refs if ref is not None]
        if named and dangling_only:
            continue
        image_id = store.image_at(desc).id
        if image_id in in_use:
            continue
        for ref in named:
            store.untag(ref)
            result.done.append(("Untagged", ref.familiar()))
        store.remove_manifest(desc.digest)
        result.done.append(("Deleted", image_id))
    sizes = {"sha256:" + path.name: path.stat().st_size for path in store.blobs.iterdir()}
    result.blobs = store.prune()
    result.space = sum(sizes.get(digest, 0) for digest in result.blobs)
    keep_chains: set[str] = set()
    for _, desc in store.entries():
        keep_chains.update(oci.chain_ids(store.image_at(desc).diff_ids))
    result.snapshots = Snapshots(root).prune(keep_chains)
    return result
