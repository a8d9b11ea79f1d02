"""The layer writer and pipeline: format, determinism, overlay upper dirs, round trips, interop."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from layer_helpers import archive, entry, listing
from registry import oci
from registry.errors import BadArchive, PybuildError
from registry.layer import extract_layer, open_layer, tar_stream_to_blob, write_layer
from registry.layer import tarformat as tf
from registry.layer.tarreader import TarReader
from registry.store import Store

CAP_NET_BIND = bytes.fromhex("0100000200040000000000000000000000000000")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "root")


def make_tree(top: Path, big: int = 0, reverse: bool = False) -> Path:
    """A tree with every kind of entry; ``reverse`` creates the entries in the opposite order."""
    rng = random.Random(7)
    long_dir = top / "usr" / "share" / ("long-" * 40)
    for directory in (top / "etc", top / "bin", long_dir):
        directory.mkdir(parents=True)
    steps = [
        lambda: (top / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n"),
        lambda: (top / "bin" / "ping").write_bytes(b"\x7fELF" + bytes(3000)),
        lambda: (long_dir / "f").write_text("long path"),
        lambda: (top / "naïve-ünïcode.txt").write_text("non-ascii name"),
        lambda: (top / "link").symlink_to("etc/passwd"),
        lambda: (top / ("t" * 120)).symlink_to("/" + "target/" * 30),
        lambda: os.mkfifo(top / "fifo"),
        lambda: os.mknod(top / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3)),
        lambda: os.mknod(top / "loop0", 0o660 | stat.S_IFBLK, os.makedev(7, 0)),
        lambda: (top / "big.bin").write_bytes(rng.randbytes(big // 2) + b"compressible text " * (big // 36)),
    ]
    for step in reversed(steps) if reverse else steps:
        step()
    os.link(top / "bin" / "ping", top / "bin" / "ping6")
    os.link(top / "bin" / "ping", top / "etc" / "ping-alias")
    os.setxattr(top / "bin" / "ping", "security.capability", CAP_NET_BIND)
    os.setxattr(top / "etc", "user.comment", "\xff binary \x00".encode("latin-1"))
    os.chmod(top / "bin" / "ping", 0o4755)
    os.chown(top / "etc" / "passwd", 1000, 2000000)
    for path in [top, *top.rglob("*")]:
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return top


def tar_entries(store: Store, digest: str) -> list:
    with store.open_blob(digest) as blob, open_layer(blob) as stream:
        reader = TarReader(stream)
        return [(e, b"".join(reader.chunks())) for e in reader]


def test_format_is_deterministic_tar(store, tmp_path):
    tree = make_tree(tmp_path / "tree")
    layer = write_layer(store, tree, source_date_epoch=1_000)
    entries = tar_entries(store, layer.descriptor.digest)
    names = [e.name for e, _ in entries]
    assert names[:5] == [b"big.bin", b"bin/", b"bin/ping", b"bin/ping6", b"etc/"]
    by_name = {e.name: (e, data) for e, data in entries}
    ping, data = by_name[b"bin/ping"]
    assert data.startswith(b"\x7fELF") and ping.mode == 0o4755 and ping.xattrs == {b"security.capability": CAP_NET_BIND}
    assert by_name[b"bin/ping6"][0].typeflag == tf.HARDLINK and by_name[b"bin/ping6"][0].linkname == b"bin/ping"
    assert by_name[b"etc/ping-alias"][0].linkname == b"bin/ping"
    assert (by_name[b"etc/passwd"][0].uid, by_name[b"etc/passwd"][0].gid) == (1000, 2000000)
    assert by_name[b"etc/"][0].xattrs == {b"user.comment": "\xff binary \x00".encode("latin-1")}
    assert by_name["naïve-ünïcode.txt".encode()][1] == b"non-ascii name"
    assert by_name[b"null"][0].typeflag == tf.CHARDEV and (by_name[b"null"][0].devmajor, by_name[b"null"][0].devminor) == (1, 3)
    assert by_name[b"loop0"][0].typeflag == tf.BLOCKDEV
    assert by_name[b"fifo"][0].typeflag == tf.FIFO
    assert by_name[b"t" * 120][0].linkname == ("/" + "target/" * 30).encode()
    assert all(e.mtime == 1_000 for e, _ in entries)  # clamped
    # GNU tar and Python's tarfile read it the same way, with no user or group names
    with store.open_blob(layer.descriptor.digest) as blob, tarfile.open(fileobj=blob, mode="r|gz") as tar:
        members = {m.name: m for m in tar}
    assert all(m.uname == "" and m.gname == "" for m in members.values())
    assert members["usr/share/" + "long-" * 40 + "/f"].size == len("long path")
    listing_ = subprocess.run(["tar", "-tvzf", str(store.blob_path(layer.descriptor.digest)), "--numeric-owner"],
                              capture_output=True, text=True, check=True).stdout
    assert "1000/2000000" in listing_ and "bin/ping6 link to bin/ping" in listing_


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_same_tree_same_digests(store, tmp_path, compression):
    first = write_layer(store, make_tree(tmp_path / "a", big=12 << 20), compression=compression, source_date_epoch=0)
    second_tree = make_tree(tmp_path / "b", big=12 << 20, reverse=True)
    os.utime(second_tree / "etc" / "passwd", (1_800_000_000, 1_800_000_000))  # newer, clamped anyway
    second = write_layer(store, second_tree, compression=compression, source_date_epoch=0)
    assert first == second
    assert first.descriptor.media_type == oci.LAYER_TYPE_FOR[compression]
    if compression == "none":
        assert first.diff_id == first.descriptor.digest


def test_without_epoch_mtimes_are_kept(store, tmp_path):
    tree = make_tree(tmp_path / "t")
    entries = tar_entries(store, write_layer(store, tree).descriptor.digest)
    assert {e.mtime for e, _ in entries} == {1_700_000_000}


def test_digests_match_the_bytes(store, tmp_path):
    layer = write_layer(store, make_tree(tmp_path / "t", big=5 << 20), source_date_epoch=0)
    blob = store.read_blob(layer.descriptor.digest)
    assert oci.sha256_digest(blob) == layer.descriptor.digest and len(blob) == layer.descriptor.size
    tar = gzip.decompress(blob)
    assert oci.sha256_digest(tar) == layer.diff_id and len(tar) == layer.uncompressed_size
    subprocess.run(["gzip", "-t", str(store.blob_path(layer.descriptor.digest))], check=True)
    subprocess.run(["pigz", "-t", str(store.blob_path(layer.descriptor.digest))], check=True)
    zst = write_layer(store, make_tree(tmp_path / "z", big=5 << 20), compression="zstd", source_date_epoch=0)
    out = subprocess.run(["zstd", "-dc", str(store.blob_path(zst.descriptor.digest))], capture_output=True, check=True)
    assert oci.sha256_digest(out.stdout) == zst.diff_id


def test_gzip_levels_and_bad_options(store, tmp_path):
    tree = make_tree(tmp_path / "t", big=4 << 20)
    diff_ids = {write_layer(store, tree, level=level, source_date_epoch=0).diff_id for level in (0, 1, 3, 6, 9)}
    assert len(diff_ids) == 1
    with pytest.raises(PybuildError, match="level"):
        write_layer(store, tree, level=12)
    with pytest.raises(PybuildError, match="unknown compression"):
        write_layer(store, tree, compression="lz4")
    with pytest.raises(PybuildError, match="not a directory"):
        write_layer(store, tmp_path / "missing")
    assert not list(store.tmp.glob("blob-*"))  # failed writes leave nothing behind


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_round_trip_write_extract_write(store, tmp_path, compression):
    tree = make_tree(tmp_path / "t", big=3 << 20)
    first = write_layer(store, tree, compression=compression)
    out = tmp_path / "out"
    with store.open_blob(first.descriptor.digest) as blob, open_layer(blob, first.descriptor.media_type) as stream:
        stats = extract_layer(stream, out, whiteouts="apply", allow_devices=True)
    assert stats.skipped == 0
    assert listing(out) == listing(tree)
    second = write_layer(store, out, compression=compression)
    assert second.diff_id == first.diff_id


def test_transcode_keeps_diff_id(store, tmp_path):
    layer = write_layer(store, make_tree(tmp_path / "t", big=3 << 20), source_date_epoch=0)
    for compression in ("zstd", "none", "gzip"):
        with store.open_blob(layer.descriptor.digest) as blob, open_layer(blob) as stream:
            other = tar_stream_to_blob(store, stream, compression)
        assert other.diff_id == layer.diff_id
    assert other.descriptor == layer.descriptor  # gzip again: the very same blob


def test_open_layer_detects_by_magic(tmp_path):
    tar = archive(entry("f", b"x" * 10000)).getvalue()
    for blob in (tar, gzip.compress(tar), zstandard.ZstdCompressor().compress(tar)):
        for media_type in (None, oci.OCI_LAYER_GZIP, oci.OCI_LAYER_ZSTD, oci.OCI_LAYER):
            with open_layer(io.BytesIO(blob), media_type) as stream:
                assert stream.read() == tar
    with open_layer(io.BytesIO(b"")) as stream:  # an empty stream is an empty archive, as for GNU tar
        assert extract_layer(stream, tmp_path / "x").entries == 0
    with open_layer(io.BytesIO(gzip.compress(b"not a tar" * 100))) as stream, pytest.raises(BadArchive):
        extract_layer(stream, tmp_path / "y")


@pytest.fixture
def overlay(tmp_path: Path, request):
    """A real overlay mount over a lower dir; yields (lower, upper, merged); unmounted after."""
    extra = getattr(request, "param", "")
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for path in (lower, upper, work, merged):
        path.mkdir()
    (lower / "gone.txt").write_text("lower")
    (lower / "dir").mkdir()
    (lower / "dir" / "a").write_text("lower a")
    (lower / "dir" / "sub").mkdir()
    (lower / "dir" / "sub" / "b").write_text("lower b")
    (lower / "keep").mkdir()
    (lower / "keep" / "k").write_text("kept")
    (lower / "edit").write_text("old")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}{extra}", str(merged)], check=True)
    try:
        yield lower, upper, merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def _change_through_overlay(merged: Path) -> None:
    (merged / "gone.txt").unlink()
    shutil.rmtree(merged / "dir")
    (merged / "dir").mkdir()
    (merged / "dir" / "new").write_text("new in opaque dir")
    (merged / "added").write_text("added")
    (merged / "edit").write_text("new")


def test_overlay_upper_dir_becomes_oci_whiteouts(store, overlay, tmp_path):
    lower, upper, merged = overlay
    _change_through_overlay(merged)
    assert stat.S_ISCHR(os.lstat(upper / "gone.txt").st_mode)
    assert os.getxattr(upper / "dir", "trusted.overlay.opaque") == b"y"
    layer = write_layer(store, upper, overlay_upper=True)
    entries = tar_entries(store, layer.descriptor.digest)
    names = [e.name for e, _ in entries]
    assert names == [b"added", b"dir/", b"dir/.wh..wh..opq", b"dir/new", b"edit", b".wh.gone.txt"]
    assert not any(k.startswith(b"trusted.overlay.") for e, _ in entries for k in e.xattrs)
    # apply mode over a copy of the lower dir gives what the overlay showed
    flat = tmp_path / "flat"
    shutil.copytree(lower, flat, symlinks=True)
    with store.open_blob(layer.descriptor.digest) as blob, open_layer(blob) as stream:
        extract_layer(stream, flat, whiteouts="apply")
    assert listing(flat) == listing(merged)
    # overlay mode gives a snapshot in overlay's own format, which writes back to the same layer
    snapshot = tmp_path / "snapshot"
    with store.open_blob(layer.descriptor.digest) as blob, open_layer(blob) as stream:
        extract_layer(stream, snapshot, whiteouts="overlay")
    assert stat.S_ISCHR(os.lstat(snapshot / "gone.txt").st_mode) and os.lstat(snapshot / "gone.txt").st_rdev == 0
    assert os.getxattr(snapshot / "dir", "trusted.overlay.opaque") == b"y"
    again = write_layer(store, snapshot, overlay_upper=True)
    assert again == layer


@pytest.mark.parametrize("overlay", [",redirect_dir=on"], indirect=True)
def test_upper_dir_with_redirects_is_refused(store, overlay):
    _lower, upper, merged = overlay
    os.rename(merged / "dir", merged / "moved")
    with pytest.raises(PybuildError, match="redirect_dir=off"):
        write_layer(store, upper, overlay_upper=True)


def test_opaque_apply_keeps_same_layer_entries(tmp_path):
    target = tmp_path / "t"
    (target / "d" / "old" / "deep").mkdir(parents=True)
    (target / "d" / "old" / "deep" / "x").write_text("lower")
    (target / "d" / "lowerfile").write_text("lower")
    extract_layer(archive(entry("d/old/new", b"this layer"), entry("d/.wh..wh..opq"),
                          entry("d/later", b"this layer too")), target, whiteouts="apply")
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "d", "d/later", "d/old", "d/old/new"]


def test_layer_accepted_by_go_tools(store, tmp_path):
    """umoci (Go) unpacks our segmented gzip (stored + deflated blocks); umoci 0.4 has no zstd."""
    tree = make_tree(tmp_path / "t", big=9 << 20)
    for layer in [write_layer(store, tree, source_date_epoch=0)]:
        config = {"architecture": "amd64", "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}
        tag = f"layer-test:{layer.descriptor.media_type.rsplit('+', 1)[-1]}"
        store.commit_image(config, [layer.descriptor], [tag])
        bundle = tmp_path / f"bundle-{tag.split(':')[1]}"
        subprocess.run(["umoci", "unpack", "--image", f"{store.root / 'store'}:{tag}", str(bundle)],
                       check=True, capture_output=True)
        got = (bundle / "rootfs" / "big.bin").read_bytes()
        assert hashlib.sha256(got).digest() == hashlib.sha256((tree / "big.bin").read_bytes()).digest()


def test_pax_for_numbers_ustar_cannot_hold():
    head = tf.header(b"big", 0o644, 5_000_000, 4_294_967_294, 9 << 30, 1 << 34, tf.REGULAR, b"", 0, 0, None)
    reader = TarReader(io.BytesIO(head), "t")
    first = next(iter(reader))
    assert (first.uid, first.gid, first.size, first.mtime) == (5_000_000, 4_294_967_294, 9 << 30, 1 << 34)
    with tarfile.open(fileobj=io.BytesIO(head + bytes(1024)), mode="r|") as tar:
        info = tar.next()
        assert (info.uid, info.gid, info.size, info.mtime) == (5_000_000, 4_294_967_294, 9 << 30, 1 << 34)


def test_gnu_tar_agrees_both_ways(store, tmp_path):
    """GNU tar unpacks our layer to the source tree; we unpack GNU tar's archive of it to the same."""
    tree = make_tree(tmp_path / "t", big=2 << 20)
    layer = write_layer(store, tree)
    gnu = tmp_path / "gnu"
    gnu.mkdir()
    flags = ["--xattrs", "--xattrs-include=*", "--numeric-owner"]
    subprocess.run(["tar", "-C", str(gnu), *flags, "-xzpf", str(store.blob_path(layer.descriptor.digest))], check=True)
    assert listing(gnu) == listing(tree)
    made_by_gnu = tmp_path / "gnu.tar"
    subprocess.run(["tar", "-C", str(tree), *flags, "--format=posix", "-cf", str(made_by_gnu), "."], check=True)
    ours = tmp_path / "ours"
    with open(made_by_gnu, "rb") as f, open_layer(f) as stream:
        extract_layer(stream, ours, whiteouts="apply", allow_devices=True)
    assert listing(ours) == listing(tree)


def test_very_deep_tree(store, tmp_path):
    """A tree nested deeper than Python's recursion limit round-trips."""
    top = tmp_path / "deep"
    fd = os.open(tmp_path, os.O_RDONLY)
    os.mkdir("deep", dir_fd=fd)
    for _ in range(1200):  # deeper than the recursion limit
        nxt = os.open("deep" if _ == 0 else "d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
        os.mkdir("d", dir_fd=fd)
    os.close(fd)
    out = tmp_path / "out"
    try:
        layer = write_layer(store, top, source_date_epoch=0)
        with store.open_blob(layer.descriptor.digest) as blob, open_layer(blob) as stream:
            assert extract_layer(stream, out).entries == 1200
        assert write_layer(store, out, source_date_epoch=0) == layer
    finally:  # pytest's own cleanup recurses: deep trees break it
        subprocess.run(["rm", "-rf", str(top), str(out)], check=True)
