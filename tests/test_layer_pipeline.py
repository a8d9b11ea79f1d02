"""The streaming pipeline: errors on either side stop every stage; memory stays flat."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from registry.layer import write_layer
from registry.layer.pipeline import stream_to_blob
from registry.store import Store, StoreWriteFailed

REPO = Path(__file__).resolve().parent.parent


def _settled_threads(before: int) -> bool:
    """No stage thread outlives the call: the pipeline joins them before it returns or raises
    (checked at once, not polled: a late thread would be a leak, whatever the machine's speed)."""
    return threading.active_count() <= before


def test_producer_error_stops_the_pipeline(tmp_path):
    store = Store(tmp_path / "root")
    before = threading.active_count()

    def produce(out):
        out.write(random.Random(0).randbytes(5 << 20))
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        stream_to_blob(store, produce)
    assert _settled_threads(before)
    assert not list(store.tmp.iterdir())


def test_disk_full_stops_the_producer(tmp_path):
    """A real ENOSPC: the store on a 4 MiB tmpfs, a 24 MiB random layer."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        store = Store(mount / "root")
        tree = tmp_path / "tree"
        tree.mkdir()
        for i in range(6):
            (tree / f"f{i}").write_bytes(random.Random(i).randbytes(4 << 20))
        before = threading.active_count()
        with pytest.raises(StoreWriteFailed, match="no space left on device writing layer"):
            write_layer(store, tree)
        assert _settled_threads(before)
        assert not [p for p in store.tmp.iterdir() if p.name.startswith("blob-")]
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
def test_memory_stays_flat_for_a_big_layer(tmp_path):
    """A 1 GiB layer (a sparse file: cheap to read) is written with a peak RSS under 150 MB."""
    tree = tmp_path / "tree"
    tree.mkdir()
    with open(tree / "big", "wb") as f:
        f.truncate(1 << 30)
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child
    # of a big pytest process would report the parent's peak.
    code = ("import sys; from registry.store import Store; from registry.layer import write_layer; "
            "r = write_layer(Store(sys.argv[2]), sys.argv[1], source_date_epoch=0); "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]; "
            "print(r.uncompressed_size, hwm)")
    out = subprocess.run([sys.executable, "-c", code, str(tree), str(tmp_path / "root")], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) > 1 << 30
    assert int(out[1]) < 150 * 1024  # KiB
