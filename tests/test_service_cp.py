"""``docker cp`` through ``pybuild system service`` (issue 15): both directions against a
running container, the same commands against dockerd; and a hostile container whose
symlinks (to ``/``, to host paths, a directory swapped for a link to ``/etc``) must
never make the copy read or write host files."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from service_helpers import service  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

SETUP = ("mkdir -p /data/sub /data/empty && echo hi > /data/f && chmod 640 /data/f && ln -s f /data/link"
         " && echo deep > /data/sub/g && ln /data/sub/g /data/sub/hard && mkdir /dest")
# (argv, compare stdout): {n} the container, {out} a host directory of this side, {src} host input
SCRIPT = [
    (["exec", "{n}", "sh", "-c", SETUP], True),
    (["cp", "{n}:/data", "{out}/tree"], True),
    (["cp", "{n}:/data/f", "{out}/f"], True),
    (["cp", "{n}:/data/link", "{out}/link"], True),
    (["cp", "-L", "{n}:/data/link", "{out}/followed"], True),
    (["cp", "{n}:/data/.", "{out}/contents"], True),
    (["cp", "{n}:/data/sub/", "{out}/"], True),
    (["cp", "{n}:/nosuch", "{out}/x"], True),
    (["cp", "{n}:/data/f/", "{out}/y"], True),
    (["cp", "{src}/file", "{n}:/dest/"], True),
    (["cp", "{src}/file", "{n}:/dest/renamed"], True),
    (["cp", "{src}/dir", "{n}:/dest/"], True),
    (["cp", "{src}/dir/.", "{n}:/dest/sub2"], True),
    (["cp", "-a", "{src}/file", "{n}:/dest/kept"], True),
    (["cp", "{src}/clash/.", "{n}:/dest"], True),
    (["cp", "{src}/clash2/.", "{n}:/dest"], True),
    (["cp", "{src}/file", "{n}:/nosuchdir/x"], True),
    (["cp", "{src}/file", "{n}:/data/f/"], True),
    (["exec", "{n}", "sh", "-c", "cd /dest && find . | sort && cat renamed dir/a dir/b/c sub2/a"
      " && cat dir && stat -c '%n %a %u:%g %F' $(find . | sort)"], True),
]


def _host_input(base: Path) -> Path:
    src = base / "src"
    (src / "dir" / "b").mkdir(parents=True)
    (src / "file").write_text("from the host\n")
    (src / "file").chmod(0o600)
    (src / "dir" / "a").write_text("a\n")
    (src / "dir" / "b" / "c").write_text("c\n")
    os.symlink("a", src / "dir" / "l")
    for path in (src / "file", src / "dir" / "a"):
        os.chown(path, 1000, 1000)  # docker cp makes them the container's root's, -a keeps them
    (src / "clash").mkdir()
    (src / "clash" / "dir").write_text("a file where the container has a directory\n")
    (src / "clash2" / "file").mkdir(parents=True)  # a directory where it has a file
    return src


def _tree(top: Path) -> list[tuple[str, str, int, str]]:
    """(relative path, kind, permissions, content or link target) of everything below ``top``."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(top))
            st = path.lstat()
            if path.is_symlink():
                rows.append((rel, "link", 0, os.readlink(path)))
            elif path.is_dir():
                rows.append((rel, "dir", st.st_mode & 0o7777, ""))
            else:
                rows.append((rel, "file", st.st_mode & 0o7777, path.read_text()))
    return sorted(rows)


def test_docker_cp_same_against_dockerd_and_service(service, pybuild, busybox_rootfs, busybox_tar,  # noqa: F811
                                                    tmp_path):
    tag = uuid.uuid4().hex[:10]
    image, name = f"pybuild-cp-{tag}:1", f"cp-{tag}"
    src = _host_input(tmp_path)
    pybuild("import", str(busybox_rootfs), image)
    subprocess.run(["docker", "import", str(busybox_tar), image], check=True, capture_output=True)
    outs = {side: tmp_path / side for side in ("theirs", "ours")}
    for out in outs.values():
        out.mkdir()
    start = ["run", "-d", "--name", name, "--network", "host", image, "sleep", "1000"]
    try:
        subprocess.run(["docker", *start], check=True, capture_output=True)
        service.docker(*start)
        for argv, compare in SCRIPT:
            results = {}
            for side, out in outs.items():
                args = [a.format(n=name, out=out, src=src) for a in argv]
                results[side] = (subprocess.run(["docker", *args], capture_output=True, timeout=120)
                                 if side == "theirs" else service.docker(*args, check=False))
            ours, theirs = results["ours"], results["theirs"]
            where = f"docker {' '.join(argv)}\nours: {ours.stderr.decode()}\ntheirs: {theirs.stderr.decode()}"
            assert ours.returncode == theirs.returncode, where
            if compare:
                assert ours.stdout == theirs.stdout, where
        assert _tree(outs["ours"]) == _tree(outs["theirs"])
        assert ("tree/sub/g", "file", 0o644, "deep\n") in _tree(outs["ours"])  # the copy did copy something
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def _names_below(top: Path) -> set[str]:
    return {name for _dir, dirs, files in os.walk(top) for name in dirs + files}


def _tar_of(entries: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return data.getvalue()


def test_hostile_container_cannot_make_cp_touch_host_files(service, pybuild, busybox_image,  # noqa: F811
                                                            tmp_path):
    """Symlinks the container planted to ``/``, to host paths and to ``/etc`` resolve inside
    the container, both ways; a directory swapped for a link to ``/etc`` while copies run
    never yields the host's ``/etc``."""
    secret_dir, victim, out = tmp_path / "secret", tmp_path / "victim", tmp_path / "out"
    for d in (secret_dir, victim, out):
        d.mkdir()
    (secret_dir / "secret").write_text("HOST SECRET\n")
    name = f"cp-attack-{uuid.uuid4().hex[:10]}"
    swap = "mv /s /s.r && ln -s /etc /s && rm /s && mv /s.r /s"
    service.docker("run", "-d", "--name", name, "--network", "host", busybox_image, "sh", "-c",
                   f"while [ ! -e /go ]; do sleep 0.05; done; while :; do {swap}; done")
    service.docker("exec", name, "sh", "-c",
                   f"ln -s / /x && ln -s {secret_dir} /h && ln -s {secret_dir}/secret /hl && ln -s /etc /d"
                   f" && ln -s {victim} /w && mkdir -p /real/sub && ln -s {victim} /real/sub/esc"
                   " && mkdir /s && echo mine > /s/mine")
    container_passwd = (service.docker("exec", name, "cat", "/etc/passwd")).stdout.decode()

    # reads
    for i, source in enumerate(["/h/secret", "/h/", f"/x{secret_dir}/secret", "/hl/"]):
        failed = service.docker("cp", f"{name}:{source}", str(out / f"r{i}"), check=False)
        assert failed.returncode == 1 and not (out / f"r{i}").exists(), source
    assert service.docker("cp", "-L", f"{name}:/hl", str(out / "followed"), check=False).returncode == 1
    service.docker("cp", f"{name}:/hl", str(out / "link"))
    assert os.readlink(out / "link") == f"{secret_dir}/secret"  # the link itself, not what the host has there
    for source in ("/x/etc/", "/d/", "/x/d/"):
        target = out / source.strip("/").replace("/", "-")
        service.docker("cp", f"{name}:{source}", str(target))
        assert (target / "passwd").read_text() == container_passwd, source
        assert "os-release" not in _names_below(target), source

    # writes
    (tmp_path / "file").write_text("pwned\n")
    service.docker("cp", str(tmp_path / "file"), f"{name}:/w/", check=False)
    escape = _tar_of({"esc/pwned": b"x\n", f"../../..{victim}/pwned2": b"x\n", "../../../../etc/pwned3": b"x\n"})
    service.docker("cp", "-", f"{name}:/real/sub", input=escape)
    assert os.listdir(victim) == [] and not os.path.exists("/etc/pwned3")
    landed = service.docker("exec", name, "sh", "-c", f"cat /real/sub{victim}/pwned /real/sub{victim}/pwned2"
                            " /real/sub/etc/pwned3").stdout
    assert landed == b"x\nx\nx\n"  # inside the container, below the destination

    # a directory swapped for a symlink to /etc while the copies walk it
    service.docker("exec", name, "touch", "/go")
    for i in range(30):
        target = out / f"race{i}"
        service.docker("cp", f"{name}:/s/", str(target), check=False)
        names = _names_below(target) if target.exists() else set()
        assert "os-release" not in names and "shadow" not in names, names
        if (target / "passwd").exists():
            assert (target / "passwd").read_text() == container_passwd
    service.docker("rm", "-f", name)


def test_cp_on_a_stopped_container_is_refused(service, busybox_image, tmp_path):  # noqa: F811
    """Its root is not mounted: a 409 that says to start it, both ways, and nothing copied."""
    name = f"cp-stopped-{uuid.uuid4().hex[:10]}"
    service.docker("create", "--name", name, "--network", "host", busybox_image, "true")
    (tmp_path / "f").write_text("x\n")
    for args in ([f"{name}:/etc/passwd", str(tmp_path / "out")], [str(tmp_path / "f"), f"{name}:/tmp/f"]):
        refused = service.docker("cp", *args, check=False)
        assert refused.returncode == 1 and b"is not running" in refused.stderr, refused.stderr
    assert not (tmp_path / "out").exists()


def test_archive_stat_and_tar_same_as_dockerd_through_docker_py(service, pybuild, busybox_rootfs,  # noqa: F811
                                                                 busybox_tar):
    """``get_archive``'s stat header (name, size, Go file mode, link target) and tar member
    names, and ``put_archive`` of a tar with a directory, a file and a FIFO, on both sides."""
    import io
    import tarfile

    import docker

    image = f"pybuild-cp-py-{uuid.uuid4().hex[:10]}:1"
    pybuild("import", str(busybox_rootfs), image)
    subprocess.run(["docker", "import", str(busybox_tar), image], check=True, capture_output=True)
    upload = io.BytesIO()
    with tarfile.open(fileobj=upload, mode="w") as tar:
        for name, kind, mode in (("up", tarfile.DIRTYPE, 0o750), ("up/f", tarfile.REGTYPE, 0o4755),
                                 ("up/p", tarfile.FIFOTYPE, 0o600)):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, 1_000_000_000
            tar.addfile(info, io.BytesIO(b""))
    seen = []
    for url in ("unix:///var/run/docker.sock", service.url):
        client = docker.DockerClient(base_url=url, version="1.41")
        container = client.containers.run(image, ["sleep", "1000"], detach=True, network_mode="host")
        try:
            container.exec_run(["sh", "-c", SETUP])
            stats, names = [], []
            for path in ("/data/f", "/data", "/data/link", "/data/sub/", "/data/."):
                stream, st = container.get_archive(path)
                del st["mtime"]
                stats.append(st)
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    names.append(sorted((m.name, m.type, m.mode, m.linkname) for m in tar.getmembers()))
            assert container.put_archive("/dest", upload.getvalue())
            listed = container.exec_run(["sh", "-c", "cd /dest && stat -c '%n %a %u:%g %F %Y' up up/f up/p"])
            seen.append((stats, names, listed.output))
        finally:
            container.remove(force=True)
            client.close()
    subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
    for ours, theirs in zip(seen[1], seen[0]):
        assert ours == theirs
    assert seen[0][0][0] == {"name": "f", "size": 3, "mode": 0o640, "linkTarget": ""}


@pytest.mark.timeout(30)
def test_cp_reader_never_opens_what_is_not_a_regular_file(tmp_path):
    """What the walk opens for its data is checked through an ``O_PATH`` fd first: a FIFO
    (whose open would block with no writer) or a device node (whose open runs its driver on
    the host) swapped in for a file is passed over, never opened."""
    from service.archive import _open_regular

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_text("data\n")
    os.symlink("file", tmp_path / "link")
    dirfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert _open_regular(dirfd, b"fifo") is None  # returns instead of waiting for a writer
        assert _open_regular(dirfd, b"link") is None  # a symlink is not followed
        assert _open_regular(dirfd, b"gone") is None
        fd = _open_regular(dirfd, b"file")
        assert fd is not None and os.read(fd, 10) == b"data\n"
        os.close(fd)
    finally:
        os.close(dirfd)
    dev = os.open("/dev", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert _open_regular(dev, b"null") is None
    finally:
        os.close(dev)
