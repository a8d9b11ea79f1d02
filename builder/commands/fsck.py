"""``pybuild fsck``: re-hash every blob and check every reference from the index down."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems")


def run(args: argparse.Namespace) -> int:
    from ._common import open_store

    report = open_store(args).fsck()
    for problem in report.problems:
        print(f"damaged: {problem}")
    if not args.quiet or report.problems:
        state = "clean" if report.clean else f"{len(report.problems)} problem(s) found"
        print(f"store {state}: {report.blobs_checked} blobs and {report.images_checked} index entries checked")
    return 0 if report.clean else 1
