"""Each case under cases/ built by docker (legacy builder) and by pybuild must agree."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import harness

PYBUILD = str(Path(sys.executable).with_name("pybuild"))

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="session")
def diff_base(tmp_path_factory) -> tuple[Path, str]:
    """The base rootfs tar and its sha256, imported into docker as ``diffbase``."""
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        pytest.skip("docker daemon not reachable")
    tar = tmp_path_factory.mktemp("diffbase") / "rootfs.tar"
    sha = harness.base_rootfs_tar(tar)
    harness.ensure_docker_base(tar, sha)
    return tar, sha


@pytest.fixture(scope="session")
def diff_root(diff_base, tmp_path_factory) -> Path:
    """A pybuild root holding the same base, ``pybuild import``ed as ``diffbase``."""
    root = tmp_path_factory.mktemp("pybuild-root")
    rootfs = tmp_path_factory.mktemp("diffbase-rootfs")
    subprocess.run(["tar", "-xpf", str(diff_base[0]), "-C", str(rootfs)], check=True)
    proc = subprocess.run([PYBUILD, "--root", str(root), "import", str(rootfs), harness.BASE_NAME],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"pybuild import failed: {proc.stderr.strip()}")
    return root


@pytest.mark.parametrize("name", harness.case_names())
def test_case(name: str, diff_base, diff_root: Path, tmp_path: Path) -> None:
    case = harness.CASES / name
    docker = harness.docker_result(case, diff_base[0], diff_base[1])
    line = harness.expected_error_line(case)
    if line is None:
        assert docker["ok"], f"docker rejected the case: {docker['error']}"
    else:
        assert not docker["ok"], "docker accepted a case marked expect-error"
    ctx = harness.prepare_context(case, tmp_path / "ctx")
    ours = harness.pybuild_build(ctx, harness.case_options(case), diff_root, PYBUILD, harness.parent_tag(name))
    if line is not None:
        assert not ours["ok"], "pybuild accepted a case docker rejects"
        if line:
            assert re.search(rf"Dockerfile:{line}\b", ours["error"]), ours["error"]
        message = harness.expected_error_text(case)
        assert message in docker["error"], docker["error"]
        assert message in ours["error"], ours["error"]
        return
    diffs = harness.compare(docker, ours)
    assert not diffs, "\n".join(diffs[:40])
