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
    (["cp", "{src}/file", "{n}:/nosuchdir/x"], True),
    (["cp", "{src}/file", "{n}:/data/f/"], True),
    (["exec", "{n}", "sh", "-c", "cd /dest && find . | sort && cat renamed dir/a dir/b/c sub2/a"
      " && stat -c '%n %a %u:%g %F' $(find . | sort)"], True),
]


def _host_input(base: Path) -> Path:
    src = base / "src"
    (src / "dir" / "b").mkdir(parents=True)
    (src / "file").write_text("from the host\n")
    (src / "file").chmod(0o600)
    (src / "dir" / "a").write_text("a\n")
    (src / "dir" / "b" / "c").write_text("c\n")
    os.symlink("a", src / "dir" / "l")
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
