"""``pybuild import SOURCE NAME[:TAG]``: an image from a rootfs tarball, ``-`` or a directory.

Like ``docker import``.  A tarball (plain, gzip or zstd) is unpacked safely into a
private directory first, so the layer is always written by our deterministic tar
writer: the same rootfs with the same ``SOURCE_DATE_EPOCH`` gives the same digest.
"""

from __future__ import annotations

import argparse
import os
import sys

from base.removal import remove_tree


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="rootfs tarball (plain, gzip, zstd), '-' for stdin, or a directory")
    parser.add_argument("name", metavar="NAME[:TAG]", nargs="?", help="name to give the image")
    parser.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                        help="apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, "
                             "LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable")
    parser.add_argument("-m", "--message", default="", help="commit message for the history")
    parser.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip", help="layer compression")
    parser.add_argument("--compression-level", type=int, default=None, help="compression level")
    parser.add_argument("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
                        help="platform the rootfs is for (default: the host's), e.g. linux/arm64")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")


def run(args: argparse.Namespace) -> int:
    from registry.errors import PybuildError
    from registry.layer import extract_layer, open_layer, write_layer
    from registry.platform import host
    from registry.platform import parse as parse_platform
    from registry.reference import parse
    from registry.store import disk_errors

    from ._common import open_store

    store = open_store(args)
    if args.change:  # a bad change fails before any work
        from builder.build.metadata import apply_changes

        apply_changes({}, args.change)
    tag = parse(args.name) if args.name else None
    if tag is not None and tag.digest:
        raise PybuildError(f"cannot import under a digest reference {args.name!r}; use NAME[:TAG]")
    epoch = _source_date_epoch()
    created = _rfc3339(epoch)
    platform = parse_platform(args.platform) if args.platform else host()
    store.sweep_temp()
    with store.transaction():
        if os.path.isdir(args.source):
            layer = write_layer(store, args.source, compression=args.compression, level=args.compression_level,
                                source_date_epoch=epoch)
        else:
            rootfs = store.temp_dir("import")
            try:
                with _open_source(args.source) as raw, open_layer(raw) as tar_stream, \
                        disk_errors(f"the rootfs of {args.source}", store.root):
                    extract_layer(tar_stream, rootfs, whiteouts="apply", allow_devices=True, name=args.source)
                layer = write_layer(store, rootfs, compression=args.compression, level=args.compression_level,
                                    source_date_epoch=epoch)
            finally:
                remove_tree(rootfs, ignore_errors=True)
        config = {
            "created": created,
            **platform.to_json(),
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created": created, "created_by": "pybuild import",
                         "comment": args.message or f"Imported from {args.source}"}],
        }
        if args.change:
            apply_changes(config, args.change)
        image = store.commit_image(config, [layer.descriptor], [tag] if tag else [])
        if tag is None:
            store.keep(image.descriptor)
    print(image.id)
    return 0


def _open_source(source: str):
    from registry.errors import PybuildError

    if source == "-":
        if sys.stdin.isatty():
            raise PybuildError("no rootfs on standard input: pipe a tarball in, or give a file or directory")
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    try:
        return open(source, "rb")
    except OSError as err:
        raise PybuildError(f"cannot read {source}: {err.strerror}") from None


def _source_date_epoch() -> int | None:
    from registry.errors import PybuildError

    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise PybuildError(f"SOURCE_DATE_EPOCH={value!r} is not an integer number of seconds") from None


def _rfc3339(epoch: int | None) -> str:
    import datetime as dt

    when = dt.datetime.fromtimestamp(epoch, dt.timezone.utc) if epoch is not None else dt.datetime.now(dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if epoch is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")
