"""``pybuild push NAME[:TAG] [DEST]``: send a stored image to a registry."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from ._transfer import add_transfer_options

    parser.add_argument("image", metavar="NAME[:TAG]", help="image in the store")
    parser.add_argument("dest", metavar="DEST", nargs="?", help="registry reference to push to (default: NAME[:TAG])")
    parser.add_argument("-a", "--all-tags", action="store_true", help="push every stored tag of the repository NAME")
    parser.add_argument("--digestfile", metavar="FILE", help="write the pushed manifest digest to FILE")
    parser.add_argument("--chunk-size", type=_size, default=None, metavar="BYTES",
                        help="upload in chunks of this size (PATCH requests) instead of one PUT")
    add_transfer_options(parser, "blobs uploaded", platform=False)


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    factor = units.get(text[-1:], 1)
    value = int(text[:-1] if text[-1:] in units else text) * factor
    if value <= 0:
        raise argparse.ArgumentTypeError("chunk size must be positive")
    return value


def run(args: argparse.Namespace) -> int:
    from registry.errors import PybuildError
    from registry.reference import parse
    from registry.remote.progress import reporting
    from registry.remote.push import push_image

    from ._common import open_store

    store = open_store(args)
    if args.all_tags:
        if args.dest:
            raise PybuildError("--all-tags takes a repository name and no DEST")
        repo = parse(args.image, default_tag=False)
        if repo.tag or repo.digest:
            raise PybuildError(f"--all-tags takes a repository name without tag: {args.image!r}")
        pairs = [(str(ref), None) for ref, _ in store.tags() if ref.name == repo.name and ref.tag]
        if not pairs:
            raise PybuildError(f"no tags of {repo.familiar_name} in the store; see 'pybuild images'")
    else:
        pairs = [(args.image, args.dest)]
    digest = ""
    for name, dest in pairs:
        target = parse(dest or name)
        if not args.quiet:
            print(f"Pushing {target}")
        with reporting("push", args.quiet) as reporter:
            digest = push_image(store, name, target, insecure=args.insecure, jobs=args.jobs,
                                chunk_size=args.chunk_size, reporter=reporter)
        print(digest if args.quiet else f"{target.tag or 'latest'}: digest: {digest}")
    if args.digestfile:
        with open(args.digestfile, "w") as f:
            f.write(digest)
    return 0
