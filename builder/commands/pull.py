"""``pybuild pull REF``: fetch an image from a registry into the store."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from ._transfer import add_policy_option, add_transfer_options

    parser.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    add_transfer_options(parser, "blobs downloaded", quiet_help="print only the image name")
    add_policy_option(parser)


def run(args: argparse.Namespace) -> int:
    from registry.remote.progress import reporting
    from registry.remote.pull import pull_image

    from ._common import open_store

    with reporting("pull", args.quiet) as reporter:
        result = pull_image(open_store(args), args.image, platform=args.platform, insecure=args.insecure,
                            jobs=args.jobs, reporter=reporter, policy=args.policy)
    if not args.quiet:
        print(f"Digest: {result.digest}")
    print(str(result.ref))
    return 0
