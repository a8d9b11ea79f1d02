"""Adapter over :class:`runner.snapshots.Snapshots` for the builder.

``lowerdirs`` returns the unpacked snapshot dirs of a stage's layers.  While the
layer codec's safe extractor is not available (it raises ``NotImplementedError``),
missing snapshots are unpacked here with :mod:`tarfile`'s ``tar`` filter (no absolute
names, no escaping links) and their whiteouts converted to overlay form, then
installed with :meth:`Snapshots.adopt`.
"""

from __future__ import annotations

import os
import tarfile

from registry import oci


def lowerdirs(snapshots, store, image) -> list[str]:
    """Snapshot ``fs`` dirs for ``image`` (``.layers``, ``.diff_ids``), bottom first."""
    try:
        return [str(p) for p in snapshots.ensure(store, image)]
    except NotImplementedError:
        pass
    from registry.layer import open_layer  # noqa: PLC0415

    ids = oci.chain_ids(list(image.diff_ids))
    for chain_id, layer in zip(ids, image.layers):
        if snapshots.has(chain_id):
            continue
        temp = store.temp_dir("unpack")
        target = os.path.join(temp, "fs")
        os.mkdir(target)
        with store.open_blob(layer.digest) as blob, open_layer(blob, layer.media_type) as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                tar.extractall(target, filter=_keep_modes, numeric_owner=True)
        _overlay_whiteouts(target)
        snapshots.adopt(chain_id, target)
    return [str(snapshots.path(c)) for c in ids]


def _keep_modes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """``tarfile``'s ``tar`` filter (refuses absolute and escaping names) without its mode changes."""
    checked = tarfile.tar_filter(member, dest)
    return checked.replace(mode=member.mode, deep=False)


def _overlay_whiteouts(root: str) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if not name.startswith(".wh."):
                continue
            path = os.path.join(dirpath, name)
            os.unlink(path)
            if name == ".wh..wh..opq":
                os.setxattr(dirpath, "trusted.overlay.opaque", b"y")
            else:
                os.mknod(os.path.join(dirpath, name[4:]), 0o020000 | 0o600, 0)
