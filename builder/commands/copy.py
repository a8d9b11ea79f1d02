"""``pybuild copy SRC DST``: copy an image between registries, the store and archives, streaming."""

from __future__ import annotations

import argparse
import sys

EPILOG = """locations:
  docker://REF, or a bare REF        a registry repository
  store:NAME                         the local store
  docker-archive:FILE[:REF]          a docker save / docker load tarball
  oci-archive:FILE[:REF]             an OCI layout in a tarball
  oci:DIR[:TAG]                      an OCI layout directory
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("source", metavar="SRC")
    parser.add_argument("dest", metavar="DST")
    from ._transfer import add_policy_option, add_transfer_options

    parser.add_argument("--digestfile", metavar="FILE", help="write the copied manifest digest to FILE")
    parser.add_argument("-a", "--all", action="store_true",
                        help="copy every platform of a multi-platform image and its index (default: one platform)")
    add_transfer_options(parser, "blobs copied")
    add_policy_option(parser)


def run(args: argparse.Namespace) -> int:
    from registry.remote.locations import copy_between
    from registry.remote.progress import reporting

    from ._common import open_store

    with reporting("copy", args.quiet) as reporter:
        manifest = copy_between(open_store(args), args.source, args.dest, platform=args.platform,
                                insecure=args.insecure, jobs=args.jobs, reporter=reporter, policy=args.policy,
                                all_platforms=args.all, note=lambda text: print(text, file=sys.stderr))
    print(manifest.digest if args.quiet else f"Copied {args.source} to {args.dest}: {manifest.digest}")
    if args.digestfile:
        with open(args.digestfile, "w") as f:
            f.write(manifest.digest)
    return 0
