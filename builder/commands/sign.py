"""``pybuild sign --key KEY REF``: sign an image in a registry, in cosign's format."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, metavar="KEY", help="private key file (from 'pybuild key generate')")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP and skip TLS verification")
    parser.add_argument("image", metavar="NAME[:TAG|@DIGEST]", help="image in a registry")


def run(args: argparse.Namespace) -> int:
    from registry.signing import keys
    from registry.signing.cosign import signature_tag
    from registry.signing.remote import sign_image

    key = keys.load_private(args.key)
    digest, added = sign_image(args.image, key, insecure=args.insecure)
    state = "signed" if added else "already signed with this signature"
    print(f"{args.image}@{digest} {state} (stored as tag {signature_tag(digest)})")
    return 0
