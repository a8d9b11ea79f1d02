"""Path attacks from hostile images and archives: every write and mount stays in the rootfs.

The image plants symlinks to a directory on the host (absolute, and through ``..``); COPY
destinations, WORKDIR, ADD of a hostile tar, volume and tmpfs targets then go through
them.  The host directory must stay untouched, and what was written must be found inside
the image where the symlink points when the rootfs is taken as ``/``.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from differential.harness import summarize_store_image
from runner_helpers import needs_root

pytestmark = [needs_root, pytest.mark.slow]


def _ctx(tmp_path: Path, dockerfile: str, files: dict[str, bytes | str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return ctx


def _build(pybuild, ctx: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return pybuild("build", "--progress", "plain", "-q", *extra, str(ctx), check=check)


def _fs(root: Path, proc: subprocess.CompletedProcess) -> dict:
    return summarize_store_image(root, proc.stdout.decode().split()[-1])["fs"]


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A directory on the host the image's symlinks aim at; it must stay empty."""
    path = tmp_path / "host-target"
    path.mkdir()
    return path


def _links(host_dir: Path) -> str:
    """RUN lines planting an absolute and a ``..`` symlink to ``host_dir``."""
    rel = "../" * 30 + str(host_dir).lstrip("/")
    return f"RUN ln -s {host_dir} /abs && ln -s {rel} /rel\n"


def test_copy_destinations_through_escaping_symlinks(pybuild, root, busybox_image, tmp_path, host_dir):
    ctx = _ctx(tmp_path, "FROM busybox\n" + _links(host_dir) +
               "COPY a.txt /abs/\nCOPY a.txt /rel/b.txt\nCOPY dir /abs/dir/\nCOPY a.txt /abs/../../../../up.txt\n",
               {"a.txt": "a\n", "dir/c.txt": "c\n"})
    fs = _fs(root, _build(pybuild, ctx))
    inside = str(host_dir).lstrip("/")
    assert list(host_dir.iterdir()) == []
    for name in ("a.txt", "b.txt", "dir/c.txt"):
        assert fs[f"{inside}/{name}"]["type"] == "file", name
    assert fs["up.txt"]["type"] == "file"


def test_workdir_through_escaping_symlinks(pybuild, root, busybox_image, tmp_path, host_dir):
    ctx = _ctx(tmp_path, "FROM busybox\n" + _links(host_dir) + "WORKDIR /abs/w1\nWORKDIR /rel/w2\nCOPY a.txt .\n",
               {"a.txt": "a\n"})
    fs = _fs(root, _build(pybuild, ctx))
    inside = str(host_dir).lstrip("/")
    assert list(host_dir.iterdir()) == []
    assert fs[f"{inside}/w1"]["type"] == "dir" and fs[f"{inside}/w2/a.txt"]["type"] == "file"


def _hostile_tar(host_dir: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", linkname: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size, info.mode = kind, linkname, len(data), 0o644
            tar.addfile(info, io.BytesIO(data) if data else None)
        add("escape", tarfile.SYMTYPE, linkname=str(host_dir))
        add("escape/pwned", data=b"through a symlink\n")
        add("dots", tarfile.SYMTYPE, linkname="../" * 30 + str(host_dir).lstrip("/"))
        add("dots/pwned2", data=b"through dots\n")
        add("../" * 30 + str(host_dir).lstrip("/") + "/pwned3", data=b"dotted name\n")
        add("hard", tarfile.LNKTYPE, linkname="../" * 30 + "etc/hostname")
    return out.getvalue()


def test_add_of_a_hostile_tar_stays_in_the_destination(pybuild, root, busybox_image, tmp_path, host_dir):
    ctx = _ctx(tmp_path, "FROM busybox\nADD evil.tar /target/\n", {"evil.tar": _hostile_tar(host_dir)})
    fs = _fs(root, _build(pybuild, ctx))
    inside = str(host_dir).lstrip("/")
    assert list(host_dir.iterdir()) == []
    # as docker (which unpacks chrooted into the destination): links and names resolve in /target
    for name in ("pwned", "pwned2", "pwned3"):
        assert fs[f"target/{inside}/{name}"]["type"] == "file", name
    assert fs["target/escape"]["type"] == "symlink"
    assert "target/hard" not in fs  # its target is not in the archive


def _linked_image(pybuild, tmp_path: Path, host_dir: Path) -> str:
    ctx = _ctx(tmp_path, "FROM busybox\n" + _links(host_dir) + "RUN ln -s /proc /p\n")
    _build(pybuild, ctx, "-t", "linked:1")
    return "linked:1"


def test_volume_and_tmpfs_targets_through_escaping_symlinks(pybuild, busybox_image, tmp_path, host_dir):
    image = _linked_image(pybuild, tmp_path, host_dir)
    src = tmp_path / "src"
    src.mkdir()
    (src / "mark").write_text("volume\n")
    proc = pybuild("run", "--rm", "-v", f"{src}:/abs/vol", "-v", f"{src}:/rel/vol2", "--tmpfs", "/abs/t",
                   image, "sh", "-c", f"cat {host_dir}/vol/mark {host_dir}/vol2/mark; ls -d {host_dir}/t")
    assert proc.stdout.decode().split() == ["volume", "volume", f"{host_dir}/t"]
    assert list(host_dir.iterdir()) == []


@pytest.mark.parametrize("target,message", [
    ("/proc", '"/proc" cannot be mounted because it is not of type proc'),
    ("/proc/foo", '"/proc/foo" cannot be mounted because it is inside /proc'),
    ("/p/sys", '"/proc/sys" cannot be mounted because it is inside /proc'),  # through the image's /p -> /proc
])
def test_mounts_over_proc_are_refused_as_runc_does(pybuild, busybox_image, tmp_path, host_dir, target, message):
    image = _linked_image(pybuild, tmp_path, host_dir)
    proc = pybuild("run", "--rm", "-v", f"{tmp_path}:{target}", image, "true", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_lxcfs_style_file_mounts_inside_proc_are_allowed(pybuild, busybox_image, tmp_path):
    fake = tmp_path / "uptime"
    fake.write_text("1.00 2.00\n")
    proc = pybuild("run", "--rm", "-v", f"{fake}:/proc/uptime:ro", busybox_image, "cat", "/proc/uptime")
    assert proc.stdout == b"1.00 2.00\n"


# ---- where pybuild followed docker less closely -------------------------------------------

def test_relative_workdir_flag_is_refused_as_docker_does(pybuild, busybox_image):
    # docker 20.10: "docker: Error response from daemon: the working directory 'rel' is
    # invalid, it needs to be an absolute path" (pybuild ran the command in /rel before)
    proc = pybuild("run", "--rm", "-w", "rel", busybox_image, "pwd", check=False)
    assert proc.returncode == 125
    assert proc.stderr.decode().strip() == ("pybuild: error: the working directory 'rel' is invalid, "
                                            "it needs to be an absolute path")


def test_run_workdir_through_a_dangling_symlink_is_made_inside(pybuild, root, busybox_image, tmp_path, host_dir):
    image = _linked_image(pybuild, tmp_path, host_dir)
    proc = pybuild("run", "--rm", "-w", "/abs/new", image, "pwd")
    assert proc.stdout.decode() == f"{host_dir}/new\n"
    assert list(host_dir.iterdir()) == []


@pytest.mark.parametrize("chown", ["4294967296", "1:4294967295", "99999999999999999999"])
def test_copy_chown_out_of_range_is_one_clear_error(pybuild, busybox_image, tmp_path, chown):
    # docker 20.10's legacy builder hands these to chown(2) truncated: 2^32 becomes root and
    # 2^32-1 leaves the owner as is, silently; pybuild ended in an OverflowError traceback
    # or did the same.  BuildKit refuses them, and so does pybuild now.
    ctx = _ctx(tmp_path, f"FROM busybox\nCOPY --chown={chown} a.txt /a\n", {"a.txt": "a\n"})
    proc = _build(pybuild, ctx, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert "Dockerfile:2" in err and "is out of range (0 to 4294967294)" in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_short_passwd_lines_are_read_the_same_by_chown_and_user(pybuild, root, busybox_image, tmp_path):
    # runc (docker run -u) and the legacy builder (--chown) read a short line as an entry
    # with the missing fields empty; pybuild's runner required all 7 passwd fields.
    ctx = _ctx(tmp_path, "FROM busybox\n"
               "RUN echo 'bob:x:1234:4321' >> /etc/passwd && echo 'crew:x:777:bob' >> /etc/group\n"
               "COPY --chown=bob:crew a.txt /a\nUSER bob\nRUN id\n", {"a.txt": "a\n"})
    fs = _fs(root, _build(pybuild, ctx, "-t", "short:1"))
    assert (fs["a"]["uid"], fs["a"]["gid"]) == (1234, 777)
    proc = pybuild("run", "--rm", "-u", "bob", "short:1", "sh", "-c", "id -u; id -g; id -G")
    uid, gid, groups = proc.stdout.decode().splitlines()
    assert (uid, gid, sorted(groups.split())) == ("1234", "4321", ["4321", "777"])


def test_volume_cleanup_after_run_does_not_follow_symlinks_to_the_host(pybuild, busybox_image, tmp_path, host_dir):
    # writes a RUN makes under a declared VOLUME are dropped from the upper dir after the
    # step; the step replaced the volume's parent by a symlink to a host directory, which
    # the cleanup followed on the host (emptying and removing host_dir/vol)
    victim = host_dir / "vol"
    victim.mkdir()
    (victim / "precious").write_text("keep\n")
    ctx = _ctx(tmp_path, f"FROM busybox\nVOLUME /data/vol\nRUN rm -rf /data && ln -s {host_dir} /data\n")
    _build(pybuild, ctx)
    assert (victim / "precious").read_text() == "keep\n"
