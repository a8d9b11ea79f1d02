"""``pybuild rmi NAME...``: untag images and delete those left with no name.

Like docker: removing a tag only untags while other names remain; an image a
container uses is refused unless ``-f`` (then it stays as ``<none>`` for the
container).  Blobs are reclaimed by ``pybuild prune``.
"""

from __future__ import annotations

import argparse

from registry.errors import PybuildError


class ImageInUse(PybuildError):
    """The image is used by a container or has several names; ``-f`` overrides."""

    exit_code = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="IMAGE")
    parser.add_argument("-f", "--force", action="store_true", help="remove even if a container uses it or it has several names")


def run(args: argparse.Namespace) -> int:
    from runner.containers import images_in_use

    from ._common import open_store

    store = open_store(args)
    in_use = images_in_use(args.root)
    failures = 0
    for name in args.names:
        try:
            for action, what in remove_image(store, name, args.force, in_use):
                print(f"{action}: {what}")
        except PybuildError as err:
            print(f"pybuild: error: {err}")
            failures += 1
    return 1 if failures else 0


def remove_image(store, name: str, force: bool, in_use: set[str]) -> list[tuple[str, str]]:
    """Untag (and delete when no name is left) one image: ``("Untagged"|"Deleted", what)`` done."""
    from registry.reference import parse

    desc = store.resolve(name)
    image = store.image_at(desc)
    names = [ref for ref, d in store.entries() if d.digest == desc.digest and ref is not None]
    try:
        asked = parse(name)
    except PybuildError:
        asked = None
    by_name = asked is not None and asked in names
    if not by_name and len(names) > 1 and not force:
        raise ImageInUse(f"image {name} is referenced by several names ({', '.join(r.familiar() for r in names)}); "
                         "remove them by name or use -f")
    removing = [asked] if asked is not None and by_name else names
    last = len(removing) >= len(names)
    if last and image.id in in_use and not force:
        raise ImageInUse(f"image {name} is used by a container; remove the container first ('pybuild rm') or use -f")
    done = []
    for ref in removing:
        store.untag(ref)
        done.append(("Untagged", ref.familiar()))
    if last:
        if image.id in in_use:
            store.keep(desc)
        else:
            store.remove_manifest(desc.digest)
            done.append(("Deleted", image.id))
    return done
