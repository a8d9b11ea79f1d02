"""The local store: verified atomic blobs, lock-serialised tags, prune and fsck."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from registry import oci
from registry.errors import DigestMismatch, ImageNotFound
from registry.store import Store


def _config(diff_ids=()):
    return {"architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}


def _image(store: Store, payload: bytes, *tags: str):
    layer = store.put_bytes(payload, oci.OCI_LAYER)
    return store.commit_image(_config([layer.digest]), [layer], tags)


def test_blob_mismatch_stores_nothing(root):
    store = Store(root)
    with pytest.raises(DigestMismatch):
        with store.blob_writer(expected_digest=oci.sha256_digest(b"good")) as writer:
            writer.write(b"evil")
            writer.commit()
    assert list(store.blobs.iterdir()) == []
    assert list(store.tmp.iterdir()) == []


def test_tag_resolve_by_name_id_and_prefix(root):
    store = Store(root)
    image = _image(store, b"one", "app:1")
    assert store.resolve("app:1").digest == image.descriptor.digest
    assert store.resolve("docker.io/library/app:1").digest == image.descriptor.digest
    assert store.resolve(image.id).digest == image.descriptor.digest
    assert store.resolve(image.id.split(":")[1][:12]).digest == image.descriptor.digest
    with pytest.raises(ImageNotFound):
        store.resolve("app:2")


def _tag_many(root: str, worker: int) -> None:
    store = Store(root)
    image = _image(store, f"worker {worker}".encode())
    for i in range(15):
        store.tag(f"w{worker}:t{i}", image.descriptor)


def test_concurrent_taggers_lose_nothing(root):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_tag_many, args=(str(root), n)) for n in range(8)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    names = {ref.familiar() for ref, _ in Store(root).tags()}
    assert names == {f"w{w}:t{i}" for w in range(8) for i in range(15)}
    assert Store(root).fsck().clean


def test_fsck_finds_corrupt_and_missing_blobs(root):
    store = Store(root)
    image = _image(store, b"layer bytes", "app:1")
    assert store.fsck().clean
    layer_path = store.blob_path(image.layers[0].digest)
    layer_path.write_bytes(b"layer bytez")
    problems = store.fsck().problems
    assert any("corrupt" in p for p in problems)
    layer_path.unlink()
    assert any("missing" in p for p in store.fsck().problems)


def test_prune_keeps_what_tags_reach(root):
    store = Store(root)
    kept = _image(store, b"kept", "keep:1")
    dropped = _image(store, b"dropped", "drop:1")
    store.untag("drop:1")
    store.remove_manifest(dropped.descriptor.digest)
    removed = set(store.prune())
    assert dropped.layers[0].digest in removed and dropped.descriptor.digest in removed
    assert store.has_blob(kept.layers[0].digest)
    assert store.fsck().clean


def test_sweep_removes_temp_files_of_dead_processes(root):
    store = Store(root)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    stale = store.tmp / f"blob-{pid}-abcdef"
    stale.write_bytes(b"partial")
    mine = store.tmp / f"blob-{os.getpid()}-abcdef"
    mine.write_bytes(b"in progress")
    store.sweep_temp()
    assert not stale.exists() and mine.exists()
