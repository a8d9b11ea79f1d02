"""``pybuild copy SRC DST``: copy an image between registries, the store and archives, streaming."""

from __future__ import annotations

import argparse

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
    parser.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform source")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP and skip TLS verification")
    parser.add_argument("--digestfile", metavar="FILE", help="write the copied manifest digest to FILE")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the digest")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="blobs copied at once (default 4)")


def run(args: argparse.Namespace) -> int:
    from registry.remote.locations import copy_between
    from registry.remote.progress import reporter_for

    from ._common import open_store

    reporter = reporter_for("copy", args.quiet)
    try:
        manifest = copy_between(open_store(args), args.source, args.dest, platform=args.platform,
                                insecure=args.insecure, jobs=args.jobs, reporter=reporter)
    finally:
        if reporter is not None:
            reporter.close()
    print(manifest.digest if args.quiet else f"Copied {args.source} to {args.dest}: {manifest.digest}")
    if args.digestfile:
        with open(args.digestfile, "w") as f:
            f.write(manifest.digest)
    return 0
