"""A full or failing disk under the store (issue 8, item 1).

Every writer error in the layer pipeline or the blob writer ends the command at once
with one line that says what to do, leaves nothing in ``$ROOT/tmp`` and a clean
``fsck``.  The disk is a small tmpfs mounted for the test; the timeouts are guards
against the old hang, never the assertion.
"""

from __future__ import annotations

import queue
import random
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from conftest import CLI
from registry.layer import write_layer
from registry.layer.pipeline import _Stages
from registry.store import Store, StoreWriteFailed
from registry_fixtures import Registry

GUARD = 120  # seconds: only to turn a hang into a failure


@pytest.fixture
def small_disk(tmp_path: Path):
    """Mount a tmpfs of the asked size under the test's dir; unmounted afterwards."""
    mounts: list[Path] = []

    def mount(size: str) -> Path:
        path = tmp_path / f"disk{len(mounts)}"
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        if subprocess.run(["umount", str(path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)


def random_tree(path: Path, size: int) -> Path:
    path.mkdir(parents=True)
    (path / "big").write_bytes(random.Random(size).randbytes(size))
    return path


def assert_clean(cli: CLI) -> None:
    assert list((cli.root / "tmp").iterdir()) == []
    assert b"store clean" in cli("fsck").stdout


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.decode().strip().splitlines()
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr.decode()
    return lines[-1]


@pytest.mark.timeout(GUARD)
def test_a_stage_waiting_for_items_ends_when_the_pipeline_stops():
    """The diff-id stage waits for segments; the tar stage was cancelled and will send nothing,
    not even its end marker.  Before the fix that wait was a plain ``q.get()``: stop() never returned."""
    before = threading.active_count()
    stages = _Stages()
    segments: queue.Queue = queue.Queue(4)

    def digest() -> None:
        for _ in stages.items(segments):
            pass

    stages.start("layer-diff-id", digest, queue.Queue(4))
    stages.stop()
    assert threading.active_count() == before


@pytest.mark.timeout(GUARD)
def test_a_full_disk_stops_every_stage(small_disk, tmp_path):
    """A real ENOSPC in the blob writer, from a layer twice the disk: one line, every thread joined."""
    store = Store(small_disk("8m") / "root")
    tree = random_tree(tmp_path / "tree", 16 << 20)
    before = threading.active_count()
    with pytest.raises(StoreWriteFailed, match=f"^no space left on device writing layer; free space under {store.root}$"):
        write_layer(store, tree, compression="none")
    assert threading.active_count() == before
    assert list(store.tmp.iterdir()) == []


@pytest.mark.timeout(GUARD)
def test_build_with_a_full_disk_fails_with_one_line(small_disk, busybox_rootfs, tmp_path):
    """The RUN step's 30 MB fit on the 50 MB disk; its layer blob does not."""
    cli = CLI(small_disk("50m") / "root")
    cli("import", str(busybox_rootfs), "busybox:latest")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN head -c 30000000 /dev/urandom > /big\n")
    proc = cli("build", "-t", "big", str(context), check=False, timeout=GUARD)
    assert one_line(proc) == (f"pybuild: error: Dockerfile:2: no space left on device writing layer; "
                              f"free space under {cli.root}")
    assert_clean(cli)


@pytest.mark.timeout(GUARD)
@pytest.mark.parametrize("disk, what", [("50m", "layer"), ("20m", "the rootfs of {tarball}")])
def test_import_with_a_full_disk_fails_with_one_line(small_disk, tmp_path, disk: str, what: str):
    """The tarball's 30 MB unpack on a 50 MB disk, where the layer blob does not fit beside them,
    and on a 20 MB disk, where the unpack itself does not fit."""
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(random_tree(tmp_path / "tree", 30_000_000), arcname=".")
    cli = CLI(small_disk(disk) / "root")
    proc = cli("import", str(tarball), "big:1", check=False, timeout=GUARD)
    assert one_line(proc) == (f"pybuild: error: no space left on device writing {what.format(tarball=tarball)}; "
                              f"free space under {cli.root}")
    assert_clean(cli)


@pytest.mark.registry
@pytest.mark.timeout(GUARD)
def test_pull_with_a_full_disk_fails_with_one_line(small_disk, plain_registry: Registry, pybuild: CLI, tmp_path):
    target = f"{plain_registry.host}/faults-disk/big:1"
    pybuild("import", str(random_tree(tmp_path / "tree", 30_000_000)), target)
    pybuild("push", target)
    cli = CLI(small_disk("20m") / "root")
    proc = cli("pull", target, check=False, timeout=GUARD)
    line = one_line(proc)
    assert line.startswith("pybuild: error: no space left on device writing blob sha256:")
    assert line.endswith(f"; free space under {cli.root}")
    assert_clean(cli)


@pytest.mark.timeout(GUARD)
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_load_with_a_full_disk_fails_with_one_line(small_disk, pybuild: CLI, tmp_path: Path, source: str):
    pybuild("import", str(random_tree(tmp_path / "tree", 30_000_000)), "big:1")
    archive = tmp_path / "big.tar"
    pybuild("save", "-o", str(archive), "big:1")
    cli = CLI(small_disk("20m") / "root")
    if source == "file":
        proc = cli("load", "-i", str(archive), check=False, timeout=GUARD)
        what = "blob sha256:"
    else:
        proc = cli("load", check=False, timeout=GUARD, input=archive.read_bytes())
        what = "the archive from standard input"
    line = one_line(proc)
    assert line.startswith(f"pybuild: error: no space left on device writing {what}"), line
    assert line.endswith(f"; free space under {cli.root}")
    assert_clean(cli)


@pytest.mark.timeout(GUARD)
def test_unpack_with_a_full_disk_fails_with_one_line(small_disk, pybuild: CLI, tmp_path: Path):
    """``run`` unpacks a 30 MB layer into a snapshot on a disk with room for the blob only."""
    pybuild("import", str(random_tree(tmp_path / "tree", 30_000_000)), "big:1")
    archive = tmp_path / "big.tar"
    pybuild("save", "-o", str(archive), "big:1")
    cli = CLI(small_disk("45m") / "root")
    cli("load", "-i", str(archive))
    proc = cli("run", "--rm", "big:1", "true", check=False, timeout=GUARD)
    line = one_line(proc)
    assert line.startswith("pybuild: error: no space left on device writing layer sha256:"), line
    assert line.endswith(f" into a snapshot; free space under {cli.root}")
    assert_clean(cli)
    assert [p.name for p in (cli.root / "snapshots").iterdir() if p.name.startswith(".tmp")] == []
