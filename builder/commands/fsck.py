"""``pybuild fsck [--repair]``: re-hash every blob and check every reference from the index down.

``--repair`` drops the corrupt blobs (and notes the missing ones), fetches each again from a registry that a pull
recorded as holding it, and removes the images that stay incomplete, saying which
image lost what.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    parser.add_argument("--repair", action="store_true",
                        help="drop corrupt blobs, fetch them again where they came from, remove images left incomplete")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP to registries when fetching again")


def run(args: argparse.Namespace) -> int:
    from ._common import open_store

    store = open_store(args)
    report = store.fsck()
    for problem in report.problems:
        print(f"damaged: {problem}")
    if args.repair and report.damaged:
        from registry.remote.refetch import refetcher

        for line in store.repair(report.damaged, refetcher(store, insecure=args.insecure)):
            print(f"repaired: {line}")
        report = store.fsck()
        for problem in report.problems:
            print(f"still damaged: {problem}")
    if report.damaged and not args.repair:
        print("run 'pybuild fsck --repair' to drop damaged blobs and fetch them again where a pull got them")
    if not args.quiet or report.problems:
        state = "clean" if report.clean else f"{len(report.problems)} problem(s) found"
        print(f"store {state}: {report.blobs_checked} blobs and {report.images_checked} index entries checked")
    return 0 if report.clean else 1
