"""Named volumes, ``--mount`` and ``--volumes-from``, each checked against ``docker run``
on the same image (docker 20.10 has them all)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from runner_helpers import needs_root

pytestmark = needs_root


@pytest.fixture
def vol() -> str:
    """A volume name unique to this test (docker's volumes are global)."""
    name = f"pbtest-{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True)


@pytest.fixture(scope="module")
def docker_busybox(docker, busybox_tar):
    name = f"pybuild-volumes:{os.getpid()}"
    subprocess.run([docker, "import", str(busybox_tar), name], check=True, capture_output=True)
    yield name
    subprocess.run([docker, "rmi", "-f", name], capture_output=True)


def both(pybuild, image: str, docker_image: str, *args: str, name: str | None = None) -> tuple[str, str]:
    """Run the same ``run`` in pybuild and docker (host network for both): (ours, theirs) stdout."""
    named = ["--name", name] if name else []
    mine = pybuild("run", *named, *args[:-1], image, *args[-1].split("\x00"))
    theirs = subprocess.run(["docker", "run", "--network", "host", *named, *args[:-1], docker_image,
                             *args[-1].split("\x00")], capture_output=True, check=True)
    return mine.stdout.decode(), theirs.stdout.decode()


def sh(script: str) -> str:
    return "\x00".join(["sh", "-c", script])


def test_named_volume_populated_kept_shared_and_removed(pybuild, busybox_image, docker_busybox, vol):
    ours, theirs = both(pybuild, busybox_image, docker_busybox, "--rm", "-v", f"{vol}:/etc",
                        sh("stat -c '%a %u' /etc; cat /etc/passwd | head -1; echo made > /etc/new"))
    assert ours == theirs and ours.splitlines()[1].startswith("root:")
    # kept after the container is gone, shared with the next one, at another path
    ours, theirs = both(pybuild, busybox_image, docker_busybox, "--rm", "-v", f"{vol}:/data:ro",
                        sh("cat /data/new; touch /data/x 2>/dev/null || echo read-only"))
    assert ours == theirs == "made\nread-only\n"
    # an existing (non-empty) volume is not populated again
    # a volume that is not empty is never filled again, even over the same image directory
    ours, theirs = both(pybuild, busybox_image, docker_busybox, "--rm", "-v", f"{vol}:/data",
                        sh("rm /data/group; ls /data | wc -l"))
    again = both(pybuild, busybox_image, docker_busybox, "--rm", "-v", f"{vol}:/etc", sh("ls /etc/group; ls /etc | wc -l"))
    assert again[0] == again[1] and "group" not in again[0] and again[0].split()[-1] == ours.split()[-1]

    info = json.loads(pybuild("volume", "inspect", vol).stdout)[0]
    assert info["Name"] == vol and info["Driver"] == "local" and os.path.isdir(info["Mountpoint"])
    assert vol in pybuild("volume", "ls", "-q").stdout.decode().split()
    pybuild("volume", "rm", vol)
    assert not os.path.exists(info["Mountpoint"])
    assert "no such volume" in pybuild("volume", "inspect", vol, check=False).stderr.decode()


def test_volume_in_use_is_kept_until_its_container_goes(pybuild, busybox_image, vol):
    pybuild("run", "--name", "user", "-v", f"{vol}:/v", busybox_image, "true")
    busy = pybuild("volume", "rm", vol, check=False)
    assert busy.returncode != 0 and "in use by container(s) user" in busy.stderr.decode()
    assert pybuild("volume", "prune").stdout.decode() == ""
    pybuild("rm", "user")
    assert vol in pybuild("volume", "prune").stdout.decode()
    assert vol not in pybuild("volume", "ls", "-q").stdout.decode()


@pytest.mark.parametrize("mount,script", [
    ("type=volume,source=VOL,target=/etc", "ls /etc | sort | tr '\\n' ' '"),
    ("type=volume,source=VOL,target=/etc,volume-nocopy", "ls /etc | wc -l"),
    ("type=volume,source=VOL,target=/v,readonly", "touch /v/x 2>/dev/null; echo $?"),
    ("type=bind,source=HOST,target=/h", "cat /h/f"),
    ("type=bind,source=HOST,target=/h,readonly", "cat /h/f; touch /h/g 2>/dev/null; echo $?"),
    ("type=tmpfs,target=/t,tmpfs-size=1m", "stat -c %a /t; df -k /t | tail -1 | awk '{print $2}'"),
    ("type=tmpfs,target=/t,tmpfs-mode=0700", "stat -c %a /t"),
])
def test_mount_flag_same_as_docker(pybuild, busybox_image, docker_busybox, vol, tmp_path, mount, script):
    (tmp_path / "f").write_text("from host\n")
    mount = mount.replace("VOL", vol).replace("HOST", str(tmp_path))
    ours, theirs = both(pybuild, busybox_image, docker_busybox, "--rm", "--mount", mount, sh(script))
    # docker's /etc has the files it bind-mounts (hosts, hostname, resolv.conf) and mtab; ours the same list
    assert ours == theirs


@pytest.mark.parametrize("bad,message", [
    ("type=bind,source=/no/such/dir,target=/x", "does not exist"),
    ("type=volume,source=v", "target=/absolute/path is required"),
    ("type=nfs,target=/x", "type must be bind, volume or tmpfs"),
    ("type=volume,target=/x,colour=blue", "unknown option(s) colour"),
])
def test_bad_mounts_are_one_line_errors(pybuild, busybox_image, bad, message):
    proc = pybuild("run", "--rm", "--mount", bad, busybox_image, "true", check=False)
    assert proc.returncode == 125 and message in proc.stderr.decode() and b"Traceback" not in proc.stderr


def test_volumes_from_same_as_docker(pybuild, busybox_image, docker_busybox, vol, tmp_path):
    (tmp_path / "f").write_text("bound\n")
    src = f"src-{vol}"
    try:
        both(pybuild, busybox_image, docker_busybox, "-v", f"{vol}:/data", "-v", f"{tmp_path}:/h",
             sh("echo shared > /data/s"), name=src)
        ours, theirs = both(pybuild, busybox_image, docker_busybox, "--rm", "--volumes-from", src,
                            sh("cat /data/s /h/f"))
        assert ours == theirs == "shared\nbound\n"
        ours, theirs = both(pybuild, busybox_image, docker_busybox, "--rm", "--volumes-from", f"{src}:ro",
                            sh("touch /data/x 2>/dev/null; echo $?"))
        assert ours == theirs == "1\n"
    finally:
        subprocess.run(["docker", "rm", "-f", src], capture_output=True)


def test_anonymous_volume(pybuild, busybox_image):
    out = pybuild("run", "--name", "anon", "-v", "/etc", busybox_image, "cat", "/etc/passwd").stdout.decode()
    assert out.startswith("root:")
    assert len(pybuild("volume", "ls", "-q").stdout.decode().split()) == 1


def test_rm_removes_anonymous_volumes_only(pybuild, busybox_image, vol):
    pybuild("run", "--rm", "-v", "/anon", "--mount", "type=volume,target=/anon2", "-v", f"{vol}:/named",
            busybox_image, "true")
    assert pybuild("volume", "ls", "-q").stdout.decode().split() == [vol]


def test_a_deeply_nested_image_directory_populates_a_volume(pybuild, busybox_image, vol, tmp_path, root):
    """A hostile image may nest directories far deeper than Python's recursion limit: the
    volume is still filled from it (failed with a RecursionError before the copy was iterative)."""
    depth = 1500
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        f"RUN p=/data; for i in $(seq {depth}); do p=$p/d; done; mkdir -p $p && echo bottom > $p/f\n")
    pybuild("build", "-q", "-t", "deep:1", str(ctx))
    deepest = "/data" + "/d" * depth + "/f"
    try:
        out = pybuild("run", "--rm", "--network", "none", "-v", f"{vol}:/data", "deep:1", "cat", deepest)
        assert out.stdout == b"bottom\n"
        pybuild("volume", "rm", vol)
    finally:  # pytest's own tmp cleanup recurses: the image's deep snapshot would break it
        subprocess.run(["rm", "-rf", str(root)], check=True)
