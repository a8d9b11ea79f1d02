"""examples/multi-arch (issue 13) builds and runs as its README says."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import PYBUILD, REPO
from platform_helpers import need_emulation

pytestmark = pytest.mark.slow
EXAMPLE = REPO / "examples" / "multi-arch"


def test_multi_arch_emulated(pybuild, root):
    """Dockerfile.emulated: both platforms' RUN steps run their own busybox (arm64's under qemu)."""
    need_emulation("aarch64")
    env = {**os.environ, "PYBUILD_ROOT": str(root), "PYBUILD": PYBUILD}
    subprocess.run(["sh", str(REPO / "examples" / "make-bases.sh"), "multiarch"], check=True, env=env,
                   capture_output=True)
    pybuild("build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", "hello-emulated",
            "-f", str(EXAMPLE / "Dockerfile.emulated"), str(EXAMPLE))
    assert pybuild("run", "--rm", "--platform", "linux/arm64", "hello-emulated").stdout == \
        b"built on aarch64, running on aarch64\n"
    assert pybuild("run", "--rm", "--platform", "linux/amd64", "hello-emulated").stdout == \
        b"built on x86_64, running on x86_64\n"


def test_multi_arch_cross_compile(pybuild, root):
    """Dockerfile: the compiler runs natively for both platforms; the arm64 binary runs emulated.

    Needs a Debian rootfs (``debootstrap --variant=minbase bookworm DIR``) in ``PYBUILD_DEBIAN_ROOTFS``
    and the Debian mirror for the build's apt-get, so it runs where those are given.
    """
    rootfs = os.environ.get("PYBUILD_DEBIAN_ROOTFS")
    if not rootfs:
        pytest.skip("set PYBUILD_DEBIAN_ROOTFS to a debootstrap'd bookworm (and allow the Debian mirror)")
    need_emulation("aarch64")
    pybuild("import", rootfs, "debian:bookworm")
    proc = pybuild("build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", "-t", "hello-cross",
                   str(EXAMPLE), timeout=1800)
    log = proc.stderr.decode()
    assert "compiling on x86_64 for arm64 with aarch64-linux-gnu-gcc" in log
    assert "compiling on x86_64 for amd64 with gcc" in log
    assert "[linux/amd64->arm64 build 6/6] RUN case" in log
    assert pybuild("run", "--rm", "--platform", "linux/arm64", "hello-cross").stdout == \
        b"hello from a static aarch64 binary\n"
    assert pybuild("run", "--rm", "--platform", "linux/amd64", "hello-cross").stdout == \
        b"hello from a static x86_64 binary\n"
