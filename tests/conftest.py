"""Shared fixtures: a private pybuild root, the pybuild CLI, busybox rootfs fixtures, docker.

Each area may append its own fixtures below; keep them real (real processes, real
mounts), and give every test its own ``PYBUILD_ROOT``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Every pybuild a test starts uses the host's network unless the test says otherwise:
# bridge networks are made only inside network namespaces that the network tests
# create (tests/netns_helpers.py), never in the host's.
os.environ["PYBUILD_NETWORK"] = "host"
PYBUILD = str(Path(sys.executable).parent / "pybuild")
BUSYBOX = "/bin/busybox"


class CLI:
    """Runs the real ``pybuild`` console script against one root."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**os.environ, "PYBUILD_ROOT": str(root)}
        self.prefix: list[str] = []  # e.g. nsenter into a test's network namespace

    def __call__(self, *args: str, check: bool = True, input: bytes | None = None, timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.prefix, PYBUILD, *args], input=input, capture_output=True, timeout=timeout,
                              env={**self.env, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout.decode(errors='replace')}\n"
                                 f"stderr: {proc.stderr.decode(errors='replace')}")
        return proc


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh PYBUILD_ROOT for one test."""
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def pybuild(root: Path) -> CLI:
    """The pybuild CLI bound to the test's root."""
    return CLI(root)


def make_busybox_rootfs(target: Path) -> Path:
    """A minimal rootfs: static busybox with its applet links, /etc/passwd and /etc/group."""
    for sub in ("bin", "etc", "tmp", "root", "home", "var", "proc", "dev", "sys"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, target / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = target / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (target / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n")
    (target / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\napp:x:1000:\n")
    return target


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> Path:
    """A busybox rootfs directory shared by the session (treat as read-only)."""
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="session")
def busybox_tar(busybox_rootfs: Path, tmp_path_factory) -> Path:
    """The busybox rootfs as a plain tarball (what ``docker import`` takes)."""
    path = tmp_path_factory.mktemp("busybox-tar") / "busybox.tar"
    with tarfile.open(path, "w") as tar:
        for entry in sorted(busybox_rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return path


@pytest.fixture
def busybox_image(pybuild: CLI, busybox_rootfs: Path) -> str:
    """``busybox:latest`` imported into the test's root; returns its name."""
    pybuild("import", str(busybox_rootfs), "busybox:latest")
    return "busybox:latest"


def docker_available() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def docker() -> str:
    """The docker CLI, with the daemon up (CI starts it; outside CI a missing daemon skips)."""
    if not docker_available():
        if os.environ.get("CI"):
            pytest.fail("dockerd is not running; scripts/start-services.sh starts it")
        pytest.skip("dockerd is not running")
    os.environ["DOCKER_BUILDKIT"] = "0"
    return "docker"


# ---- registry client (issue 4): docker-registry processes, token server, certificates ----
from registry_fixtures import any_registry, plain_registry, registry_factory, tls_registry, token_registry  # noqa: E402,F401


# ---- multi-platform builds (issue 13): an arm64 busybox base from Debian's package ----
@pytest.fixture(scope="session")
def arm64_rootfs(tmp_path_factory) -> Path:
    """A busybox rootfs whose binary is Debian's busybox-static:arm64 (session-wide; read-only)."""
    from platform_helpers import download_busybox_deb, make_foreign_busybox_rootfs

    deb = download_busybox_deb(tmp_path_factory.getbasetemp() / "debs")
    return make_foreign_busybox_rootfs(deb, tmp_path_factory.mktemp("arm64") / "rootfs")


@pytest.fixture
def arm64_busybox(pybuild: CLI, arm64_rootfs: Path) -> str:
    """``busybox-arm64:latest``, imported with ``--platform linux/arm64`` into the test's root."""
    pybuild("import", "--platform", "linux/arm64", str(arm64_rootfs), "busybox-arm64:latest")
    return "busybox-arm64:latest"


@pytest.fixture
def two_bases(pybuild: CLI, busybox_rootfs: Path, arm64_rootfs: Path) -> None:
    """``base-amd64`` (the host's busybox) and ``base-arm64`` (Debian's busybox-static:arm64)."""
    from platform_helpers import need_emulation

    need_emulation("aarch64")
    pybuild("import", "--platform", "linux/amd64", str(busybox_rootfs), "base-amd64")
    pybuild("import", "--platform", "linux/arm64", str(arm64_rootfs), "base-arm64")
