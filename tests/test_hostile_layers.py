"""Crafted hostile layers: not one of them may write, link or delete outside the target."""

from __future__ import annotations

import gzip
import io
import os
import random
import resource
import stat
import subprocess
from pathlib import Path

import pytest
import zstandard
from isal import isal_zlib

from layer_helpers import archive, entry, listing
from registry.errors import BadArchive
from registry.layer import extract_layer, open_layer
from registry.layer import tarformat as tf

HOST_MARK = "pybuild-hostile-mark"


class Box:
    """A target dir next to a sentinel dir; everything outside the target is checked afterwards."""

    def __init__(self, tmp_path: Path):
        self.top = tmp_path
        self.outside = tmp_path / "outside"
        (self.outside / "keep").mkdir(parents=True)
        (self.outside / "sentinel").write_text("untouched")
        (self.outside / "keep" / "file").write_text("untouched")
        self.target = tmp_path / "jail" / "target"
        self.target.mkdir(parents=True)
        self.before = listing(tmp_path, exclude=self.target)
        self.passwd = os.stat("/etc/passwd")

    def extract(self, stream: io.BytesIO, **kwargs) -> None:
        extract_layer(stream, self.target, name="hostile", **kwargs)

    def assert_contained(self) -> None:
        assert listing(self.top, exclude=self.target) == self.before
        for path in (f"/{HOST_MARK}", f"/etc/{HOST_MARK}", f"/tmp/{HOST_MARK}"):
            assert not os.path.lexists(path), path
        passwd = os.stat("/etc/passwd")
        assert (passwd.st_nlink, passwd.st_mtime_ns, passwd.st_size) == (
            self.passwd.st_nlink, self.passwd.st_mtime_ns, self.passwd.st_size)
        for dirpath, _dirs, files in os.walk(self.target):
            for name in files:
                st = os.lstat(os.path.join(dirpath, name))
                assert (st.st_dev, st.st_ino) != (self.passwd.st_dev, self.passwd.st_ino)


@pytest.fixture
def box(tmp_path: Path):
    b = Box(tmp_path)
    yield b
    b.assert_contained()
    subprocess.run(["rm", "-rf", str(b.target)], check=True)  # pytest's own cleanup recurses: deep trees break it


def test_dotdot_name_is_rejected(box):
    with pytest.raises(BadArchive, match="outside the layer"):
        box.extract(archive(entry("../outside/sentinel", b"owned")))


def test_dotdot_in_the_middle_is_rejected(box):
    with pytest.raises(BadArchive, match="outside the layer"):
        box.extract(archive(entry("a/", kind=tf.DIRECTORY, mode=0o755), entry("a/../../outside/sentinel", b"owned")))


def test_dotdot_that_stays_inside_is_cleaned(box):
    box.extract(archive(entry("a/b/../c", b"ok")))
    assert (box.target / "a" / "c").read_bytes() == b"ok"


def test_absolute_name_lands_inside(box):
    box.extract(archive(entry(f"/etc/{HOST_MARK}", b"x"), entry(f"/{HOST_MARK}", b"y")))
    assert (box.target / "etc" / HOST_MARK).read_bytes() == b"x"
    assert (box.target / HOST_MARK).read_bytes() == b"y"


@pytest.mark.parametrize("whiteouts", ["apply", "overlay"])
def test_symlink_to_root_then_write_through_it(box, whiteouts):
    box.extract(archive(entry("link", kind=tf.SYMLINK, link="/"),
                        entry(f"link/{HOST_MARK}", b"x"),
                        entry(f"link/etc/{HOST_MARK}", b"y")), whiteouts=whiteouts)
    assert (box.target / HOST_MARK).read_bytes() == b"x"
    assert (box.target / "etc" / HOST_MARK).read_bytes() == b"y"


def test_symlink_to_outside_path_then_write_through_it(box):
    box.extract(archive(entry("out", kind=tf.SYMLINK, link=str(box.outside)),
                        entry("out/sentinel", b"owned")))
    inside = box.target / str(box.outside).lstrip("/") / "sentinel"
    assert inside.read_bytes() == b"owned"


def test_symlink_dotdot_chains(box):
    box.extract(archive(entry("a", kind=tf.SYMLINK, link=".."),
                        entry("b", kind=tf.SYMLINK, link="a/../a/.."),
                        entry("c", kind=tf.SYMLINK, link="../../../../../outside"),
                        entry("b/a/b/sentinel", b"1"),
                        entry("c/sentinel", b"2"),
                        entry("c/keep/file", b"3")))
    assert (box.target / "sentinel").read_bytes() == b"1"
    assert (box.target / "outside" / "sentinel").read_bytes() == b"2"
    assert (box.target / "outside" / "keep" / "file").read_bytes() == b"3"


def test_directory_replaced_by_symlink_mid_archive(box):
    box.extract(archive(entry("d/", kind=tf.DIRECTORY, mode=0o755),
                        entry("d/x", b"first"),
                        entry("d", kind=tf.SYMLINK, link=str(box.outside)),
                        entry("d/sentinel", b"owned"),
                        entry("d/keep/file", b"owned")))
    assert (box.target / "d").is_symlink()
    assert (box.target / str(box.outside).lstrip("/") / "sentinel").read_bytes() == b"owned"


def test_file_replaces_a_symlink_instead_of_writing_through_it(box):
    box.extract(archive(entry("s", kind=tf.SYMLINK, link=str(box.outside / "sentinel")),
                        entry("s", b"replaced"),
                        entry("p", kind=tf.SYMLINK, link="/etc/passwd"),
                        entry("p", b"not passwd")))
    assert not (box.target / "s").is_symlink() and (box.target / "s").read_bytes() == b"replaced"
    assert (box.target / "p").read_bytes() == b"not passwd"


def test_hardlink_to_host_file(box):
    box.extract(archive(entry("passwd", kind=tf.HARDLINK, link="/etc/passwd"),
                        entry("sent", kind=tf.HARDLINK, link="../outside/sentinel".replace("../", "")),
                        entry("own", b"mine"),
                        entry("own2", kind=tf.HARDLINK, link="/own")))
    assert not (box.target / "passwd").exists() and not (box.target / "sent").exists()
    assert os.stat(box.target / "own2").st_ino == os.stat(box.target / "own").st_ino


def test_hardlink_escaping_with_dotdot_is_rejected(box):
    with pytest.raises(BadArchive, match="outside the layer"):
        box.extract(archive(entry("x", kind=tf.HARDLINK, link="../../outside/sentinel")))


def test_hardlink_through_symlinked_dir(box):
    box.extract(archive(entry("e", kind=tf.SYMLINK, link="/etc"),
                        entry("o", kind=tf.SYMLINK, link=str(box.outside)),
                        entry("x", kind=tf.HARDLINK, link="e/passwd"),
                        entry("y", kind=tf.HARDLINK, link="o/sentinel")))
    assert not os.path.lexists(box.target / "x") and not os.path.lexists(box.target / "y")


def test_devices_are_skipped_unless_allowed(box):
    layer = [entry("dev/mem", kind=tf.CHARDEV, dev=(1, 1), mode=0o666),
             entry("dev/sda", kind=tf.BLOCKDEV, dev=(8, 0), mode=0o660)]
    box.extract(archive(*layer))
    assert not os.path.lexists(box.target / "dev" / "mem") and not os.path.lexists(box.target / "dev" / "sda")
    box.extract(archive(*layer), allow_devices=True)
    assert stat.S_ISCHR(os.lstat(box.target / "dev" / "mem").st_mode)
    assert stat.S_ISBLK(os.lstat(box.target / "dev" / "sda").st_mode)


def test_setuid_dropped_when_not_allowed(box):
    layer = [entry("bin/su", b"#!", mode=0o4755), entry("bin/wall", b"#!", mode=0o2755),
             entry("sgid/", kind=tf.DIRECTORY, mode=0o2775)]
    box.extract(archive(*layer), allow_setuid=False)
    assert stat.S_IMODE(os.stat(box.target / "bin" / "su").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(box.target / "bin" / "wall").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(box.target / "sgid").st_mode) == 0o775
    box.extract(archive(*layer))
    assert stat.S_IMODE(os.stat(box.target / "bin" / "su").st_mode) == 0o4755


@pytest.mark.parametrize("whiteouts", ["apply", "overlay"])
def test_whiteouts_with_dots(box, whiteouts):
    (box.target / "d").mkdir()
    (box.target / "d" / "kept").write_text("x")
    box.extract(archive(entry("d/.wh...", b""), entry("d/.wh..", b""), entry("d/.wh.", b""),
                        entry(".wh...", b""), entry("d/.wh.../outside", b"")), whiteouts=whiteouts)
    assert (box.target / "d" / "kept").read_text() == "x"


def test_whiteout_dotdot_name_escaping_is_rejected(box):
    with pytest.raises(BadArchive, match="outside the layer"):
        box.extract(archive(entry("../.wh.outside", b"")), whiteouts="apply")


@pytest.mark.parametrize("whiteouts", ["apply", "overlay"])
def test_whiteout_through_a_symlink(box, whiteouts):
    (box.target / "victim").write_text("inside")
    box.extract(archive(entry("o", kind=tf.SYMLINK, link=str(box.outside)),
                        entry("o/.wh.sentinel", b""),
                        entry("r", kind=tf.SYMLINK, link="/"),
                        entry("r/.wh.victim", b"")), whiteouts=whiteouts)
    if whiteouts == "apply":
        assert not os.path.lexists(box.target / "victim")
    else:
        assert stat.S_ISCHR(os.lstat(box.target / "victim").st_mode)


@pytest.mark.parametrize("whiteouts", ["apply", "overlay"])
def test_opaque_whiteout_in_a_symlinked_dir(box, whiteouts):
    box.extract(archive(entry("o", kind=tf.SYMLINK, link=str(box.outside)),
                        entry("o/.wh..wh..opq", b""),
                        entry("k", kind=tf.SYMLINK, link="../../outside/keep"),
                        entry("k/.wh..wh..opq", b"")), whiteouts=whiteouts)
    with pytest.raises(OSError):
        os.getxattr(box.outside, "trusted.overlay.opaque")


def test_overlay_xattrs_from_the_archive_are_dropped(box):
    box.extract(archive(entry("d/", kind=tf.DIRECTORY, mode=0o755,
                              xattrs={b"trusted.overlay.redirect": b"/etc", b"trusted.overlay.opaque": b"y",
                                      b"user.ok": b"1"})), whiteouts="overlay")
    box.extract(archive(entry("e", b"", xattrs={b"user.a\0b": b"1", b"bogus": b"2", b"user.big": b"x" * 70000})))
    assert (box.target / "e").exists()
    names = os.listxattr(box.target / "d")
    assert "user.ok" in names and not any(n.startswith("trusted.overlay.") for n in names)


def test_huge_pax_header(box):
    pax = tf.header(b"././@PaxHeader", 0o644, 0, 0, 1 << 30, 0, tf.PAX_HEADER)
    with pytest.raises(BadArchive, match="too large"):
        box.extract(io.BytesIO(pax + b"9 path=x\n" + bytes(503)))


def test_absurd_size(box):
    head = bytearray(tf.header(b"big", 0o644, 0, 0, 0, 0, tf.REGULAR))
    head[124:136] = b"\x80" + (1 << 60).to_bytes(11, "big")
    head[148:156] = b"%06o\0 " % tf.checksum_of(bytes(head[:148]) + b" " * 8 + bytes(head[156:]))
    with pytest.raises(BadArchive, match="absurd size"):
        box.extract(io.BytesIO(bytes(head) + bytes(1024)))


def test_truncated_archive(box):
    data = archive(entry("a", b"x" * 5000)).getvalue()[:2048]
    with pytest.raises(BadArchive, match="truncated"):
        box.extract(io.BytesIO(data))


def test_non_tar_input(box):
    with pytest.raises(BadArchive, match="not a tar archive"):
        box.extract(io.BytesIO(b"PK\x03\x04 this is a zip file, not a tar" * 40))


def test_symlink_loop(box):
    with pytest.raises(BadArchive, match="symbolic links"):
        box.extract(archive(entry("a", kind=tf.SYMLINK, link="b"), entry("b", kind=tf.SYMLINK, link="a"),
                            entry("a/x", b"loop")))


def test_file_replaces_directory_and_duplicates_later_wins(box):
    box.extract(archive(entry("d/", kind=tf.DIRECTORY, mode=0o755), entry("d/f", b"in dir"),
                        entry("d", b"now a file"), entry("e", b"one"), entry("e", b"two")))
    assert (box.target / "d").read_bytes() == b"now a file"
    assert (box.target / "e").read_bytes() == b"two"


def test_gzip_bomb_is_streamed_and_limited(box):
    """A 1 GiB file of zeros in a ~4 MiB gzip: unpacking streams, and a byte limit stops it."""
    comp = isal_zlib.compressobj(3, isal_zlib.DEFLATED, 31)
    parts = [comp.compress(tf.header(b"bomb", 0o644, 0, 0, 1 << 30, 0, tf.REGULAR))]
    zeros = bytes(1 << 20)
    parts += [comp.compress(zeros) for _ in range(1024)]
    parts.append(comp.flush())
    blob = b"".join(parts)
    assert len(blob) < 8 << 20
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BadArchive, match="more than"):
        with open_layer(io.BytesIO(blob)) as stream:
            box.extract(stream, max_bytes=64 << 20)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 64 << 10  # KiB: < 64 MiB more


def test_media_type_lies_are_ignored(box):
    data = archive(entry("f", b"data")).getvalue()
    with open_layer(io.BytesIO(gzip.compress(data)), "application/vnd.oci.image.layer.v1.tar") as stream:
        box.extract(stream)
    assert (box.target / "f").read_bytes() == b"data"


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.ZstdCompressor().compress, bytes])
def test_truncated_compressed_layers(box, compress):
    tar = archive(*(entry(f"f{i}", random.Random(i).randbytes(100_000)) for i in range(8))).getvalue()
    blob = compress(tar)
    for cut in (len(blob) // 3, len(blob) - 700):
        with pytest.raises(BadArchive, match="truncated|corrupt"):
            with open_layer(io.BytesIO(blob[:cut])) as stream:
                box.extract(stream)


def test_archive_without_end_marker_is_truncated(box):
    with pytest.raises(BadArchive, match="truncated"):
        box.extract(archive(entry("a", b"x"), entry("b", b"y"), end=False))


def test_corrupt_gzip(box):
    blob = bytearray(gzip.compress(archive(entry("a", random.Random(0).randbytes(5000))).getvalue()))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(BadArchive, match="corrupt"):
        with open_layer(io.BytesIO(bytes(blob))) as stream:
            box.extract(stream)


def test_nul_in_pax_path(box):
    with pytest.raises(BadArchive, match="NUL"):
        box.extract(archive(entry("é\0../../outside/sentinel".encode(), b"x")))


def test_absurd_mtime_and_self_destroying_hardlink(box):
    box.extract(archive(entry("old", b"x", mtime=(1 << 33) - 1),
                        entry("d/", kind=tf.DIRECTORY, mode=0o755), entry("d/f", b"x"),
                        entry("d", kind=tf.HARDLINK, link="d/f")))
    assert not os.path.lexists(box.target / "d")
    head = bytearray(tf.header(b"future", 0o644, 0, 0, 0, 0, tf.REGULAR))
    head[136:148] = b"\x80" + (1 << 62).to_bytes(11, "big")
    head[148:156] = b"%06o\0 " % tf.checksum_of(bytes(head[:148]) + b" " * 8 + bytes(head[156:]))
    box.extract(io.BytesIO(bytes(head) + bytes(1024)))
    assert (box.target / "future").exists()


@pytest.mark.parametrize("whiteouts", ["apply", "overlay"])
def test_deeper_than_the_recursion_limit(box, whiteouts):
    """1,200 nested directories, an opaque whiteout over them, then a file replacing them all."""
    deep = [entry("d/" + "x/" * n, kind=tf.DIRECTORY, mode=0o755) for n in range(1200)]
    (box.target / "d" / "lower").mkdir(parents=True)
    box.extract(archive(*deep, entry("d/.wh..wh..opq"), entry("d/" + "x/" * 1200 + "f", b"deep")),
                whiteouts=whiteouts)
    assert (box.target / "d" / "lower").exists() == (whiteouts == "overlay")
    box.extract(archive(entry("d", b"now a file")), whiteouts=whiteouts)
    assert (box.target / "d").read_bytes() == b"now a file"


def test_import_of_a_tree_deeper_than_the_recursion_limit(pybuild, root, tmp_path):
    """``pybuild import`` of a tarball nested 1,200 deep: imported, then removed cleanly by
    rmi and prune (its scratch rootfs and snapshot were removed with a recursive rmtree
    that ended in a RecursionError traceback before base.removal)."""
    deep = [entry("d/" + "x/" * n, kind=tf.DIRECTORY, mode=0o755) for n in range(1200)]
    path = tmp_path / "deep.tar"
    path.write_bytes(archive(*deep, entry("d/" + "x/" * 1200 + "f", b"deep")).getvalue())
    imported = pybuild("import", str(path), "deep:1")
    assert b"Traceback" not in imported.stderr
    assert not os.listdir(root / "tmp")
    pybuild("run", "--rm", "--network", "none", "deep:1", "/bin/true", check=False)  # unpacks a snapshot (no /bin)
    pybuild("rmi", "deep:1")
    pruned = pybuild("prune")
    assert b"Traceback" not in pruned.stderr
    pybuild("fsck")
