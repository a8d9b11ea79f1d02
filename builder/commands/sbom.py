"""``pybuild sbom IMAGE``: the SPDX 2.3 SBOM of an image in the store, a registry or an archive."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE",
                        help="NAME (the store, else its registry), store:NAME, docker://REF, "
                             "docker-archive:FILE, oci-archive:FILE or oci:DIR")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the document to FILE instead of stdout")
    parser.add_argument("--platform", help="os/arch[/variant] of a multi-platform image (default: the host's)")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP and skip TLS verification")


def run(args: argparse.Namespace) -> int:
    import contextlib
    import json
    import sys

    from registry.errors import ImageNotFound
    from registry.remote.locations import Location, open_source, parse_location
    from registry.sbom.scan import image_sbom

    from ._common import open_store

    store = open_store(args)
    loc = parse_location(args.image)
    if loc.kind == "docker" and not args.image.startswith("docker://"):
        with contextlib.suppress(ImageNotFound):
            store.resolve(loc.name)
            loc = Location("store", name=loc.name)
    with contextlib.ExitStack() as stack:
        source, ref = open_source(store, loc, args.platform, args.insecure, stack)
        doc = image_sbom(source, str(ref) if ref else args.image)
    text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
