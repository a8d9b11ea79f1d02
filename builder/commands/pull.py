"""``pybuild pull REF``: fetch an image from a registry into the store."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    parser.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform image (default: the host's)")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP and skip TLS verification")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="layers downloaded at once (default 4)")


def run(args: argparse.Namespace) -> int:
    from registry.remote.progress import reporter_for
    from registry.remote.pull import pull_image

    from ._common import open_store

    reporter = reporter_for("pull", args.quiet)
    try:
        result = pull_image(open_store(args), args.image, platform=args.platform, insecure=args.insecure,
                            jobs=args.jobs, reporter=reporter)
    finally:
        if reporter is not None:
            reporter.close()
    if not args.quiet:
        print(f"Digest: {result.digest}")
    print(str(result.ref))
    return 0
