"""Corrupt blobs in the store (issue 8, item 3).

One flipped byte in a layer blob: every reader of the blob (the unpack for ``run`` and
``build FROM``, ``save``, ``push``, ``copy``) verifies the digest as it streams and
fails with one line naming the blob, and writes nothing whole; ``fsck --repair`` drops
the blob, fetches it again where a pull recorded its origin, and otherwise removes the
images that lost it, saying so.
"""

from __future__ import annotations

import base64
import json
import random
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import CLI
from registry.store import Store
from registry_fixtures import Registry


def layer_digest(cli: CLI, name: str) -> str:
    return Store(cli.root).image(name).layers[0].digest


def flip_a_byte(cli: CLI, digest: str) -> None:
    """Flip one byte in the middle of a stored blob."""
    path = Store(cli.root).blob_path(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def corrupt_busybox(pybuild: CLI, busybox_image: str) -> str:
    """busybox:latest with one byte flipped in its layer blob (never unpacked yet); returns the digest."""
    digest = layer_digest(pybuild, busybox_image)
    flip_a_byte(pybuild, digest)
    return digest


def assert_corrupt_error(proc, digest: str, prefix: str = "") -> None:
    err = proc.stderr.decode()
    assert proc.returncode != 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.strip().splitlines()[-1] == f"pybuild: error: {prefix}blob {digest} is corrupt; run pybuild fsck", err


def snapshot_dirs(cli: CLI) -> list[str]:
    snapshots = cli.root / "snapshots"
    return [p.name for p in snapshots.iterdir() if not p.name.endswith(".json")] if snapshots.is_dir() else []


def test_run_refuses_a_corrupt_layer(pybuild: CLI, corrupt_busybox: str):
    assert_corrupt_error(pybuild("run", "--rm", "busybox", "true", check=False), corrupt_busybox)
    assert snapshot_dirs(pybuild) == []  # nothing half-unpacked was kept
    assert list((pybuild.root / "tmp").iterdir()) == []


def test_build_from_a_corrupt_layer(pybuild: CLI, corrupt_busybox: str, tmp_path: Path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN true\n")
    assert_corrupt_error(pybuild("build", str(context), check=False), corrupt_busybox, "Dockerfile:2: ")
    assert snapshot_dirs(pybuild) == []


def test_save_refuses_a_corrupt_blob(pybuild: CLI, corrupt_busybox: str, tmp_path: Path):
    target = tmp_path / "out.tar"
    assert_corrupt_error(pybuild("save", "-o", str(target), "busybox", check=False), corrupt_busybox)
    assert list(tmp_path.glob("out.tar*")) == []
    # to a pipe: the archive stops before the corrupt blob's last bytes and the exit says so
    piped = pybuild("save", "busybox", check=False)
    assert_corrupt_error(piped, corrupt_busybox)
    with pytest.raises(tarfile.TarError):
        with tarfile.open(fileobj=__import__("io").BytesIO(piped.stdout)) as tar:
            tar.extractfile(f"blobs/sha256/{corrupt_busybox.split(':')[1]}").read()


@pytest.mark.parametrize("kind", ["oci", "docker-archive", "oci-archive"])
def test_copy_refuses_a_corrupt_blob(pybuild: CLI, corrupt_busybox: str, tmp_path: Path, kind: str):
    target = tmp_path / "dest"
    proc = pybuild("copy", "store:busybox", f"{kind}:{target}:busybox", check=False)
    assert_corrupt_error(proc, corrupt_busybox)
    if kind == "oci":
        assert not (target / "blobs" / "sha256" / corrupt_busybox.split(":")[1]).exists()
        assert not (target / "index.json").exists()
        assert [p.name for p in target.iterdir() if p.name.startswith(".tmp")] == []
    else:
        assert list(tmp_path.glob("dest*")) == []


def registry_has(reg: Registry, path: str) -> bool:
    request = urllib.request.Request(f"http://{reg.host}{path}", method="HEAD", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as err:
        assert err.code == 404
        return False


@pytest.mark.registry
def test_push_refuses_a_corrupt_blob(plain_registry: Registry, pybuild: CLI, corrupt_busybox: str):
    target = f"{plain_registry.host}/faults-corrupt/push:1"
    assert_corrupt_error(pybuild("push", "busybox", target, check=False), corrupt_busybox)
    assert not registry_has(plain_registry, f"/v2/faults-corrupt/push/blobs/{corrupt_busybox}")
    assert not registry_has(plain_registry, "/v2/faults-corrupt/push/manifests/1")


def test_fsck_repair_removes_what_cannot_be_fetched(pybuild: CLI, busybox_image: str, tmp_path: Path):
    pybuild("tag", busybox_image, "twin:1")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hello").write_text("hello\n")
    pybuild("import", str(tree), "intact:1")
    digest = layer_digest(pybuild, busybox_image)
    flip_a_byte(pybuild, digest)

    checked = pybuild("fsck", check=False)
    assert checked.returncode == 1 and f"blob {digest} is corrupt".encode() in checked.stdout
    assert b"run 'pybuild fsck --repair'" in checked.stdout
    assert Store(pybuild.root).has_blob(digest)  # plain fsck changes nothing
    repaired = pybuild("fsck", "--repair").stdout.decode().splitlines()
    for name in ("busybox:latest", "twin:1"):
        assert (f"repaired: {name}: removed: it lost its layer {digest} (corrupt), and no registry is known to "
                f"hold it; pull, load or build the image again") in repaired
    assert repaired[-1].startswith("store clean:")
    assert not Store(pybuild.root).has_blob(digest)
    listed = pybuild("images").stdout.decode()
    assert "intact" in listed and "busybox" not in listed and "twin" not in listed
    assert b"store clean" in pybuild("fsck").stdout
    assert json.loads(pybuild("inspect", "intact:1").stdout)[0]["RepoTags"] == ["intact:1"]


def test_fsck_repair_removes_an_image_whose_blob_is_missing(pybuild: CLI, busybox_image: str):
    digest = layer_digest(pybuild, busybox_image)
    Store(pybuild.root).blob_path(digest).unlink()
    repaired = pybuild("fsck", "--repair").stdout.decode().splitlines()
    assert (f"repaired: busybox:latest: removed: it lost its layer {digest} (missing), and no registry is known "
            f"to hold it; pull, load or build the image again") in repaired
    assert repaired[-1].startswith("store clean:")


@pytest.mark.registry
def test_fsck_repair_fetches_again_from_the_origin(plain_registry: Registry, pybuild: CLI, busybox_image: str,
                                                   tmp_path: Path):
    target = f"{plain_registry.host}/faults-corrupt/origin:1"
    pybuild("push", busybox_image, target)
    other = CLI(tmp_path / "other")
    other("pull", target)
    digest = layer_digest(other, target)
    flip_a_byte(other, digest)
    assert_corrupt_error(other("run", "--rm", target, "true", check=False), digest)

    repaired = other("fsck", "--repair").stdout.decode().splitlines()
    assert (f"repaired: {target}: layer {digest} was corrupt; fetched it again from "
            f"{plain_registry.host}/faults-corrupt/origin") in repaired
    assert repaired[-1].startswith("store clean:")
    assert other("run", "--rm", target, "true").returncode == 0


def test_unpack_reports_any_flipped_byte_as_corrupt(pybuild: CLI, tmp_path: Path):
    """Flips spread over a 5 MB blob of text (deflated, many tar entries, read in 1 MiB pieces):
    whether the decoder fails first (IsalError, a bad tar header) or reads garbage without noticing,
    the unpack says the blob is corrupt and keeps no snapshot."""
    from registry.store import BlobCorrupt
    from runner.snapshots import Snapshots

    tree = tmp_path / "tree"
    tree.mkdir()
    rng = random.Random(8)
    for n in range(48):
        (tree / f"file{n}").write_bytes(base64.encodebytes(rng.randbytes(96 << 10)))
    pybuild("import", str(tree), "text:1")
    store = Store(pybuild.root)
    image = store.image("text:1")
    path = store.blob_path(image.layers[0].digest)
    good = path.read_bytes()
    snapshots = Snapshots(tmp_path / "snapshots-root")
    causes = set()
    for i in range(1, 24):
        data = bytearray(good)
        data[len(data) * i // 24] ^= 0x55
        path.write_bytes(bytes(data))
        with pytest.raises(BlobCorrupt, match=f"blob {image.layers[0].digest} is corrupt; run pybuild fsck") as err:
            snapshots.ensure(store, image)
        causes.add(type(err.value.__cause__).__name__)
        assert snapshot_dirs(CLI(tmp_path / "snapshots-root")) == []
    path.write_bytes(good)
    assert len(snapshots.ensure(store, image)) == 1
    assert "BadArchive" in causes, causes  # some flips made the decoder fail before the digest was known
