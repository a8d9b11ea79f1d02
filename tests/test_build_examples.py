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
