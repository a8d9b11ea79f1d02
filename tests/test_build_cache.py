"""Build cache: no-change rebuild, mtime-only change, content change, --no-cache."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

DOCKERFILE = """\
FROM busybox
COPY first.txt /first.txt
RUN echo ran-run-$((0+1)) && cat /first.txt > /copy1
COPY second.txt /second.txt
RUN echo ran-run-$((0+2)) && cat /second.txt > /copy2
ENV DONE=1
"""


def _steps(output: str) -> dict[str, str]:
    """Map '#N <label>' to 'CACHED' or 'DONE' from plain progress output."""
    labels: dict[str, str] = {}
    state: dict[str, str] = {}
    for line in output.splitlines():
        m = re.match(r"#(\d+) (\[.*)", line)
        if m:
            labels[m.group(1)] = m.group(2)
            continue
        m = re.match(r"#(\d+) (CACHED|DONE)", line)
        if m and m.group(1) in labels:
            state[labels[m.group(1)]] = m.group(2)
    return state


@pytest.fixture
def project(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "first.txt").write_text("one\n")
    (ctx / "second.txt").write_text("two\n")
    return ctx


def _build(pybuild, ctx: Path, *extra: str) -> tuple[str, dict[str, str], str]:
    proc = pybuild("build", "--progress", "plain", *extra, str(ctx))
    err = proc.stderr.decode()
    return proc.stdout.decode().strip().splitlines()[-1], _steps(err), err


def _layer_steps(steps: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in steps.items() if re.search(r"\] (COPY|RUN) ", k)}


@pytest.mark.slow
def test_rebuild_without_change_is_fully_cached(pybuild, busybox_image, project):
    first, steps1, _ = _build(pybuild, project, "-t", "cachetest")
    assert set(_layer_steps(steps1).values()) == {"DONE"}
    second, steps2, err = _build(pybuild, project, "-t", "cachetest")
    assert second == first
    assert set(_layer_steps(steps2).values()) == {"CACHED"}
    assert not re.search(r"ran-run-\d", err)


@pytest.mark.slow
def test_mtime_only_change_keeps_cache(pybuild, busybox_image, project):
    first, _, _ = _build(pybuild, project)
    os.utime(project / "first.txt", (1, 1))
    os.utime(project / "second.txt")
    second, steps, _ = _build(pybuild, project)
    assert second == first
    assert set(_layer_steps(steps).values()) == {"CACHED"}


@pytest.mark.slow
def test_content_change_reruns_from_first_user(pybuild, busybox_image, project):
    first, _, _ = _build(pybuild, project)
    (project / "second.txt").write_text("changed\n")
    second, steps, err = _build(pybuild, project)
    assert second != first
    layer = _layer_steps(steps)
    order = sorted(layer, key=lambda k: int(re.search(r" (\d+)/", k).group(1)))
    assert [layer[k] for k in order] == ["CACHED", "CACHED", "DONE", "DONE"]
    assert "ran-run-2" in err and "ran-run-1" not in err


@pytest.mark.slow
def test_no_cache_rebuilds_everything(pybuild, busybox_image, project):
    _build(pybuild, project)
    _, steps, err = _build(pybuild, project, "--no-cache")
    assert set(_layer_steps(steps).values()) == {"DONE"}
    assert "ran-run-1" in err and "ran-run-2" in err


@pytest.mark.slow
def test_source_date_epoch_gives_same_id_in_fresh_roots(tmp_path, busybox_rootfs, project):
    from conftest import CLI

    ids = []
    for n in range(2):
        root = tmp_path / f"root{n}"
        root.mkdir()
        cli = CLI(root)
        env = {"SOURCE_DATE_EPOCH": "1700000000"}
        cli("import", str(busybox_rootfs), "busybox", env=env)
        proc = cli("build", "--progress", "plain", str(project), env=env)
        ids.append(proc.stdout.decode().strip().splitlines()[-1])
    assert ids[0] == ids[1]


@pytest.mark.slow
def test_concurrent_builds_share_one_root(pybuild, root, busybox_image, project):
    import subprocess

    from conftest import PYBUILD

    env = {**os.environ, "PYBUILD_ROOT": str(root), "SOURCE_DATE_EPOCH": "1700000000"}
    procs = [subprocess.Popen([PYBUILD, "build", "-q", "-t", f"same:{n}", str(project)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in range(3)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode() for _, err in outputs]
    ids = {out.decode().strip() for out, _ in outputs}
    assert len(ids) == 1
    pybuild("fsck")
