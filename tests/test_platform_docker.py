"""Multi-platform builds against docker 20.10's legacy builder (issue 13): the same Dockerfile, the same base.

The base is a real multi-platform image: pybuild builds an amd64+arm64 index and pushes it
to a docker-registry on loopback; both builders then pull from there.  The comparison is the
differential harness's (filesystem, config, history), plus the config's platform fields.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from differential.harness import _summarize_docker_archive, compare, summarize_store_image
from test_platform_index import build_multi

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.registry]
ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}


@pytest.fixture
def multi_base(pybuild, two_bases, plain_registry, docker, tmp_path) -> str:
    """An amd64+arm64 index in a registry; docker's copies are removed afterwards."""
    build_multi(pybuild, tmp_path)
    ref = f"{plain_registry.host}/platforms/base:1"
    pybuild("push", "-q", "multi", ref)
    yield ref
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)


def _docker(ctx: Path, tag: str, *flags: str) -> tuple[dict, dict]:
    proc = subprocess.run(["docker", "build", "-q", *flags, "-t", tag, str(ctx)], capture_output=True, text=True,
                          env=ENV)
    assert proc.returncode == 0, proc.stderr
    try:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "image.tar"
            subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
            inspect = json.loads(subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                                                check=True).stdout)[0]
            return _summarize_docker_archive(archive), inspect
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def _pybuild(pybuild, root: Path, ctx: Path, *flags: str) -> tuple[dict, dict]:
    image = pybuild("build", "-q", *flags, str(ctx)).stdout.decode().split()[-1]
    return summarize_store_image(root, image), json.loads(pybuild("inspect", image).stdout)[0]


def _platform(inspect: dict) -> tuple[str, str, str]:
    return inspect["Os"], inspect["Architecture"], inspect.get("Variant") or ""


@pytest.mark.parametrize("flags,from_flag", [
    (("--platform", "linux/arm64"), ""),        # --platform with a single platform on a multi-arch base
    ((), "--platform=linux/arm64 "),           # FROM --platform=...
    (("--platform", "linux/amd64"), ""),       # the host's platform picked from the index
])
def test_platform_against_docker(pybuild, root, multi_base, tmp_path, flags, from_flag):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {from_flag}{multi_base}\nRUN uname -m > /built-on\n"
                                    'CMD ["cat", "/built-on"]\n')
    theirs, their_inspect = _docker(ctx, f"pybuild-platform-diff-{os.getpid()}", *flags)
    ours, our_inspect = _pybuild(pybuild, root, ctx, *flags)
    assert compare(theirs, ours) == []
    assert _platform(our_inspect) == _platform(their_inspect)
    expected = "arm64" if "arm64" in " ".join(flags) + from_flag else "amd64"
    assert our_inspect["Architecture"] == expected
