"""``pybuild verify --key PUB REF``: check an image's cosign signatures against a public key."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, metavar="PUB", help="public key file (PEM)")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP and skip TLS verification")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    parser.add_argument("image", metavar="NAME[:TAG|@DIGEST]", help="image in a registry")


def run(args: argparse.Namespace) -> int:
    import sys

    from registry.signing import keys, simplesigning
    from registry.signing.remote import verify_image

    key = keys.load_public_file(args.key)
    result = verify_image(args.image, key, insecure=args.insecure, key_name=args.key)
    if args.quiet:
        return 0
    print(f"Verification for {result.ref}@{result.digest} --", file=sys.stderr)
    print(f"{len(result.payloads)} of {len(result.signatures)} signature(s) verified with {args.key}; "
          f"each names the image's digest and repository", file=sys.stderr)
    # as cosign verify: a JSON array of the accepted payloads on stdout
    print("[" + ",".join(simplesigning.encode(payload).decode() for payload in result.payloads) + "]")
    return 0
