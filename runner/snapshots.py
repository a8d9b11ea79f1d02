"""Unpacked layers ("snapshots") keyed by chain ID, stacked with overlayfs.

Layout under ``$PYBUILD_ROOT/snapshots``::

    <short id>/fs       the layer's files in overlay format (whiteouts are 0/0
                        character devices, opaque dirs carry trusted.overlay.opaque)
    <short id>/chain    the full chain ID, to detect short-id collisions
    .tmp-<pid>-<rand>/  a snapshot being made; renamed into place when complete

The short id is the first 12 hex digits of the chain ID, so that the overlay mount
options for a 128-layer image (``<id>/fs:`` relative to this directory) fit in the
4096-byte page the kernel accepts.  A snapshot appears by ``rename(2)``: readers
never see half an unpack, and two processes unpacking the same layer both succeed
(the loser discards its copy).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from base.removal import remove_tree
from registry import tempfiles
from registry.errors import StoreCorrupt
from registry.oci import chain_ids

if TYPE_CHECKING:
    from registry.store import Store, StoredImage

SHORT_ID_LEN = 12


def short_id(chain_id: str) -> str:
    """The directory name for a chain ID (``sha256:abc...`` -> ``abc...``[:12])."""
    return chain_id.split(":", 1)[-1][:SHORT_ID_LEN]


def _is_short_id(name: str) -> bool:
    return len(name) == SHORT_ID_LEN and all(c in "0123456789abcdef" for c in name)


class Snapshots:
    """The snapshot directory of one pybuild root."""

    def __init__(self, root: str | os.PathLike[str]):
        self.dir = Path(root) / "snapshots"
        self._swept = False

    def path(self, chain_id: str) -> Path:
        """The ``fs`` directory of a chain ID's snapshot (it may not exist)."""
        return self.dir / short_id(chain_id) / "fs"

    def has(self, chain_id: str) -> bool:
        """Whether the snapshot exists (and is this chain ID's, not a colliding one)."""
        try:
            recorded = (self.dir / short_id(chain_id) / "chain").read_text()
        except FileNotFoundError:
            return False
        if recorded != chain_id:
            raise StoreCorrupt(f"snapshot {short_id(chain_id)} holds {recorded}, not {chain_id}; run 'pybuild prune'")
        return True

    def ensure(self, store: "Store", image: "StoredImage") -> list[Path]:
        """Unpack the image's missing layers; return the ``fs`` dirs, bottom layer first."""
        ids = chain_ids(image.diff_ids)
        layers = image.layers
        if len(ids) != len(layers):
            raise StoreCorrupt(f"image {image.id}: {len(layers)} layers but {len(ids)} diff_ids in its config")
        for chain_id, layer in zip(ids, layers):
            if not self.has(chain_id):
                self._unpack(store, layer, chain_id)
        return [self.path(c) for c in ids]

    def _unpack(self, store: "Store", layer, chain_id: str) -> None:
        from registry.layer import extract_layer, open_layer
        from registry.store import disk_errors

        temp = self._temp()
        try:
            with store.reading_blob(layer.digest) as blob, open_layer(blob, layer.media_type) as stream, \
                    disk_errors(f"layer {layer.digest} into a snapshot", self.dir.parent):
                extract_layer(stream, temp / "fs", whiteouts="overlay")
            self._install(temp, chain_id)
        finally:
            remove_tree(temp, ignore_errors=True)

    def adopt(self, chain_id: str, upper_dir: str | os.PathLike[str]) -> Path:
        """Make a finished RUN step's upper dir the chain ID's snapshot, as it is (a rename).

        ``upper_dir`` must be on the same filesystem (e.g. under ``$ROOT/tmp``).  If the
        snapshot already exists (a concurrent build made it), ``upper_dir`` is removed.
        """
        temp = self._temp()
        try:
            os.rename(upper_dir, temp / "fs")
            self._install(temp, chain_id)
        finally:
            remove_tree(temp, ignore_errors=True)
        return self.path(chain_id)

    def _temp(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self._swept:  # the first write of this process clears what dead ones left
            self._swept = True
            tempfiles.sweep(self.dir, prefix=".tmp-")
        temp = self.dir / tempfiles.temp_name(".tmp")
        temp.mkdir(mode=0o700)
        return temp

    def _install(self, temp: Path, chain_id: str) -> None:
        (temp / "chain").write_text(chain_id)
        os.chmod(temp, 0o755)
        try:
            os.rename(temp, self.dir / short_id(chain_id))
        except OSError as err:
            if not self.has(chain_id):  # lost the race to someone else's copy: fine
                raise StoreCorrupt(f"cannot install snapshot {short_id(chain_id)}: {err}") from err

    def chain_ids(self) -> list[str]:
        """Chain IDs of every complete snapshot."""
        out = []
        for entry in self.dir.glob("[0-9a-f]*/chain"):
            out.append(entry.read_text())
        return out

    def prune(self, keep_chain_ids: Iterable[str]) -> list[str]:
        """Remove snapshots not in ``keep_chain_ids`` and dead temp dirs; return removed chain IDs."""
        keep = {short_id(c) for c in keep_chain_ids}
        removed: list[str] = []
        if not self.dir.is_dir():
            return removed
        tempfiles.sweep(self.dir, prefix=".tmp-")
        for entry in self.dir.iterdir():
            if entry.name.startswith(".tmp-"):
                continue
            if entry.name in keep or not _is_short_id(entry.name):
                continue  # kept, or not a snapshot (e.g. the run path's cache file)
            try:
                chain = (entry / "chain").read_text()
            except FileNotFoundError:
                chain = entry.name
            doomed = self._temp()  # rename first: the snapshot vanishes atomically
            os.rename(entry, doomed / "old")
            remove_tree(doomed, ignore_errors=True)
            removed.append(chain)
        return removed
