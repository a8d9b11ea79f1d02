"""The default seccomp filter: docker's allow-list, and never silently missing.

A static probe (tests/data/syscall_probe.c, built with ``gcc -static``) tries ~50
system calls and prints each outcome; it runs under ``docker run`` and under
``pybuild run`` on the same rootfs, and the outputs must be the same line for line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import PYBUILD
from runner_helpers import needs_root
from static_programs import build_static

pytestmark = needs_root

PROBE_SOURCE = Path(__file__).parent / "data" / "syscall_probe.c"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
# Docker 20.10's profile predates the AF_VSOCK rule of docker's current profile
# (which pybuild follows): compared separately below.
NEWER_THAN_DOCKER_HERE = {"socket_vsock"}


@pytest.fixture(scope="module")
def probe_rootfs(busybox_rootfs, tmp_path_factory) -> Path:
    rootfs = tmp_path_factory.mktemp("probe") / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    build_static(PROBE_SOURCE, rootfs / "bin" / "probe")
    return rootfs


@pytest.fixture
def probe_image(pybuild, probe_rootfs) -> str:
    pybuild("import", str(probe_rootfs), "probe:1")
    return "probe:1"


@pytest.fixture(scope="module")
def docker_probe_image(docker, probe_rootfs, tmp_path_factory):
    tar = tmp_path_factory.mktemp("probe-tar") / "probe.tar"
    with tarfile.open(tar, "w") as out:
        for entry in sorted(probe_rootfs.iterdir()):
            out.add(entry, arcname=entry.name)
    name = f"pybuild-seccomp-probe:{os.getpid()}"
    subprocess.run([docker, "import", str(tar), name], check=True, capture_output=True)
    yield name
    subprocess.run([docker, "rmi", "-f", name], capture_output=True)


def outcomes(stdout: bytes) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in stdout.decode().splitlines())


FLAG_CASES = [[], ["--cap-add", "SYS_ADMIN"], ["--cap-add", "SYS_PTRACE"], ["--cap-drop", "ALL"], ["-u", "1000"]]


@pytest.mark.docker
@pytest.mark.parametrize("flags", FLAG_CASES, ids=[" ".join(f) or "default" for f in FLAG_CASES])
def test_syscall_outcomes_match_docker(docker, docker_probe_image, pybuild, probe_image, flags):
    theirs = subprocess.run([docker, "run", "--rm", "--network", "none", *flags, docker_probe_image, "/bin/probe"],
                            capture_output=True)
    mine = pybuild("run", "--rm", "--network", "none", *flags, probe_image, "/bin/probe")
    assert theirs.returncode == 0, theirs.stderr
    docker_out, ours = outcomes(theirs.stdout), outcomes(mine.stdout)
    assert len(ours) > 40 and ours.keys() == docker_out.keys()
    for name in NEWER_THAN_DOCKER_HERE:
        ours.pop(name)
        docker_out.pop(name)
    assert ours == docker_out
    if not flags:  # the probe really exercises the filter: some refused, some allowed, clone3 as docker
        assert ours["keyctl"] == ours["unshare_user"] == ours["personality_norandom"] == "EPERM"
        assert ours["clone_plain"] == ours["personality_query"] == "OK" and ours["clone3"] == "ENOSYS"


def test_vsock_sockets_are_refused(pybuild, probe_image):
    ours = outcomes(pybuild("run", "--rm", probe_image, "/bin/probe").stdout)
    assert ours["socket_vsock"] == "EPERM" and ours["socket_unix"] == "OK"


def test_unconfined_runs_without_a_filter(pybuild, probe_image):
    status = pybuild("run", "--rm", "--security-opt", "seccomp=unconfined", probe_image,
                     "grep", "Seccomp:", "/proc/self/status").stdout.split()
    assert status == [b"Seccomp:", b"0"]
    assert pybuild("run", "--rm", probe_image, "grep", "Seccomp:", "/proc/self/status").stdout.split() == \
        [b"Seccomp:", b"2"]
    ours = outcomes(pybuild("run", "--rm", "--security-opt", "seccomp=unconfined", probe_image, "/bin/probe").stdout)
    assert ours["personality_norandom"] == "OK"  # only the filter refuses it


def _without_binding(pybuild, *args: str) -> subprocess.CompletedProcess:
    """``pybuild ARGS`` in a mount namespace where Debian's dist-packages (the binding) is empty."""
    script = f'mount -t tmpfs none {DIST_PACKAGES} && exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", PYBUILD, *args],
                          capture_output=True, env=pybuild.env, timeout=120)


def test_refuses_to_start_without_the_binding(pybuild, busybox_image, tmp_path):
    if not os.path.isdir(DIST_PACKAGES):
        pytest.skip(f"{DIST_PACKAGES} is absent")
    marker = tmp_path / "ran"
    proc = _without_binding(pybuild, "run", "--rm", "-v", f"{tmp_path}:/out", busybox_image, "touch", "/out/ran")
    assert proc.returncode == 125
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "python3-seccomp" in lines[0] and "seccomp=unconfined" in lines[0]
    assert not marker.exists()  # the command never ran
    ok = _without_binding(pybuild, "run", "--rm", "--security-opt", "seccomp=unconfined", busybox_image,
                          "grep", "Seccomp:", "/proc/self/status")
    assert ok.returncode == 0 and ok.stdout.split() == [b"Seccomp:", b"0"]


@pytest.mark.parametrize("opt", ["seccomp=/etc/profile.json", "apparmor=unconfined", "label=disable"])
def test_unsupported_security_opts_are_refused(pybuild, busybox_image, opt):
    proc = pybuild("run", "--rm", "--security-opt", opt, busybox_image, "true", check=False)
    assert proc.returncode != 0 and b"--security-opt" in proc.stderr and b"Traceback" not in proc.stderr
