"""The examples that need no network build and run as their READMEs say."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import PYBUILD, REPO

pytestmark = pytest.mark.slow


@pytest.fixture
def examples_busybox(root) -> None:
    """``examples/make-bases.sh busybox`` against the test's root."""
    env = {**os.environ, "PYBUILD_ROOT": str(root), "PYBUILD": PYBUILD}
    subprocess.run(["sh", str(REPO / "examples" / "make-bases.sh"), "busybox"], check=True, env=env,
                   capture_output=True)


def test_busybox_hello(pybuild, examples_busybox):
    first = pybuild("build", "-q", "-t", "hello", str(REPO / "examples" / "busybox-hello")).stdout
    assert pybuild("run", "--rm", "hello").stdout.decode().startswith("Hello from pybuild\nbuilt on ")
    assert pybuild("build", "-q", "-t", "hello", str(REPO / "examples" / "busybox-hello")).stdout == first


def test_args_cache_secret(pybuild, root, examples_busybox, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cr3t")
    args = ("build", "-q", "-t", "argdemo", "--build-arg", "APP_VERSION=1.2.3", "--secret", f"id=token,src={token}",
            str(REPO / "examples" / "args-cache-secret"))
    pybuild(*args)
    assert pybuild("run", "--rm", "argdemo").stdout.decode() == "version=1.2.3 built-by=nobody\n6\n"
    pybuild("build", "--no-cache", *args[1:])
    counters = list((root / "cache" / "mounts").glob("*/builds"))
    assert [c.read_text() for c in counters] == ["2\n"]


def test_multi_arch_emulated(pybuild, root):
    """examples/multi-arch/Dockerfile.emulated: both platforms' RUN steps run their own busybox."""
    from platform_helpers import need_emulation

    need_emulation("aarch64")
    env = {**os.environ, "PYBUILD_ROOT": str(root), "PYBUILD": PYBUILD}
    subprocess.run(["sh", str(REPO / "examples" / "make-bases.sh"), "multiarch"], check=True, env=env,
                   capture_output=True)
    example = REPO / "examples" / "multi-arch"
    pybuild("build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", "hello-emulated",
            "-f", str(example / "Dockerfile.emulated"), str(example))
    assert pybuild("run", "--rm", "--platform", "linux/arm64", "hello-emulated").stdout == \
        b"built on aarch64, running on aarch64\n"
    assert pybuild("run", "--rm", "--platform", "linux/amd64", "hello-emulated").stdout == \
        b"built on x86_64, running on x86_64\n"


def test_multi_arch_cross_compile(pybuild, root):
    """examples/multi-arch/Dockerfile: the compiler runs natively for both platforms; the arm64 binary is emulated.

    Needs a Debian rootfs (``debootstrap --variant=minbase bookworm DIR``) in ``PYBUILD_DEBIAN_ROOTFS``
    and the Debian mirror for the build's apt-get, so it runs where those are given.
    """
    from platform_helpers import need_emulation

    rootfs = os.environ.get("PYBUILD_DEBIAN_ROOTFS")
    if not rootfs:
        pytest.skip("set PYBUILD_DEBIAN_ROOTFS to a debootstrap'd bookworm (and allow the Debian mirror)")
    need_emulation("aarch64")
    pybuild("import", rootfs, "debian:bookworm")
    proc = pybuild("build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", "-t", "hello-cross",
                   str(REPO / "examples" / "multi-arch"), timeout=1800)
    log = proc.stderr.decode()
    assert "compiling on x86_64 for arm64 with aarch64-linux-gnu-gcc" in log
    assert "compiling on x86_64 for amd64 with gcc" in log
    assert "[linux/amd64->arm64 build 6/6] RUN case" in log
    assert pybuild("run", "--rm", "--platform", "linux/arm64", "hello-cross").stdout == \
        b"hello from a static aarch64 binary\n"
    assert pybuild("run", "--rm", "--platform", "linux/amd64", "hello-cross").stdout == \
        b"hello from a static x86_64 binary\n"
