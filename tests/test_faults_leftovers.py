"""Temp space left by ``kill -9`` is swept by the next command that writes (issue 8, item 4).

The kill lands where the test decides: an import reading a FIFO the test holds open,
a RUN step waiting on a FIFO of its context, a pull whose blob download the test's
proxy holds half-way.  Then another command
(``tag``, ``build``) must leave ``$ROOT/tmp`` empty.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from conftest import CLI, PYBUILD
from faultproxy import FaultProxy
from registry import tempfiles
from registry_fixtures import Registry

GUARD = 120
MiB = 1 << 20


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "tmp").iterdir())


def kill_9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.timeout(GUARD)
def test_import_killed_mid_write_is_swept_by_tag(pybuild: CLI, busybox_image: str, tmp_path: Path):
    fifo = tmp_path / "rootfs.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([PYBUILD, "import", str(fifo), "half:1"], env=pybuild.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with open(fifo, "wb") as source:  # opens once pybuild opens the other end
            info = tarfile.TarInfo("big")
            info.size = 64 * MiB
            source.write(info.tobuf(tarfile.GNU_FORMAT))
            # 32 MiB of the 64: when this write returns, the pipe holds at most 64 KiB of it
            # and pybuild's read buffers a few MiB, so the rest is in the import's temp dir.
            source.write(bytes(32 * MiB))
            source.flush()
            kill_9(proc)
    except BrokenPipeError:
        pass
    finally:
        if proc.poll() is None:
            kill_9(proc)
    left = leftovers(pybuild.root)
    assert [name for name in left if name.startswith(f"import-{proc.pid}-")], left
    assert sum(f.stat().st_size for f in (pybuild.root / "tmp").rglob("big")) > 16 * MiB

    pybuild("tag", busybox_image, "again:1")
    assert leftovers(pybuild.root) == []


@pytest.mark.timeout(GUARD)
def test_build_killed_in_a_run_step_is_swept_by_tag(pybuild: CLI, busybox_image: str, tmp_path: Path):
    """The RUN step writes 8 MiB into its upper dir, then opens a FIFO of the context: when the
    test's open of the FIFO returns, the step is exactly there, and the test kills pybuild."""
    context = tmp_path / "ctx"
    context.mkdir()
    os.mkfifo(context / "gate")
    (context / "Dockerfile").write_text(
        "FROM busybox\nRUN --mount=type=bind,target=/ctx head -c 8388608 /dev/zero > /f && cat /ctx/gate\n")
    proc = subprocess.Popen([PYBUILD, "build", str(context)], env=pybuild.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gate = os.open(context / "gate", os.O_WRONLY)  # returns once the RUN step's cat opened it
    try:
        kill_9(proc)
    finally:
        os.close(gate)  # whatever of the step still runs reads EOF and ends
    left = leftovers(pybuild.root)
    assert [name for name in left if name.startswith(f"build-{proc.pid}-")], left
    assert [f.stat().st_size for f in (pybuild.root / "tmp").rglob("upper/f")] == [8 * MiB]

    pybuild("tag", busybox_image, "again:1")
    assert leftovers(pybuild.root) == []


class HoldingProxy(FaultProxy):
    """A FaultProxy whose ``hold`` rule sends ``at`` bytes of the body, then waits for :attr:`release`."""

    def __init__(self, upstream: str):
        self.release = threading.Event()
        super().__init__(upstream)

    def _handler(self):
        base = super()._handler()
        proxy = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def _relay(self, response, rule) -> None:
                if rule is not None and rule.action == "hold":
                    self.wfile = _Holding(self.wfile, rule.at, proxy.release)
                super()._relay(response, rule)

        return Handler


class _Holding:
    """A writer that passes ``at`` bytes of the response, then blocks until released."""

    def __init__(self, inner, at: int, release: threading.Event):
        self._inner, self._left, self._release = inner, at, release

    def write(self, data: bytes) -> int:
        if len(data) > self._left:
            self._inner.write(data[:self._left])
            self._inner.flush()
            self._left = 0
            self._release.wait()
            raise ConnectionAbortedError
        self._left -= len(data)
        return self._inner.write(data)

    def flush(self) -> None:
        self._inner.flush()

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


@pytest.mark.registry
@pytest.mark.timeout(GUARD)
def test_pull_killed_mid_blob_is_swept_by_build(plain_registry: Registry, pybuild: CLI, busybox_image: str,
                                                 tmp_path: Path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big").write_bytes(random.Random(8).randbytes(8 * MiB))
    name = f"{plain_registry.host}/faults-leftovers/big:1"
    pybuild("import", str(tree), name)
    pybuild("push", name)
    other = CLI(tmp_path / "other")
    other("import", str(tree), "base:1")
    proxy = HoldingProxy(plain_registry.host)
    try:
        proxy.add("GET", r"/blobs/sha256:", "hold", times=100, at=2 * MiB)
        proc = subprocess.Popen([PYBUILD, "pull", f"{proxy.host}/faults-leftovers/big:1"], env=other.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # wait (a condition, not a time) until the pull is writing a blob: the proxy holds it there
            tmp = other.root / "tmp"
            while not (tmp.is_dir() and [p for p in tmp.iterdir() if p.name.startswith("blob-")]):
                assert proc.poll() is None, "the pull ended before the proxy held it"
                threading.Event().wait(0.02)
        finally:
            kill_9(proc)
    finally:
        proxy.release.set()
        proxy.close()
    assert [n for n in leftovers(other.root) if n.startswith(f"blob-{proc.pid}-")], leftovers(other.root)

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM base:1\nCOPY Dockerfile /\n")
    other("build", "-t", "next", str(context))
    assert leftovers(other.root) == []


def test_a_reused_pid_does_not_keep_a_leftover(tmp_path: Path):
    """A leftover is judged by its ctime against its pid's process start, not by its mtime."""
    young = subprocess.Popen(["sleep", "600"])
    try:
        mine = tmp_path / f"blob-{young.pid}-0123456789ab"
        mine.write_bytes(b"x")
        os.utime(mine, (0, 0))  # an extractor may set an old mtime; the ctime (now) is what counts
        assert tempfiles.sweep(tmp_path) == []
        assert tempfiles._left_by_dead_process(young.pid, 0.0)  # a leftover from 1970 is not this process's
        assert not tempfiles._left_by_dead_process(young.pid, mine.stat().st_ctime)
    finally:
        young.kill()
        young.wait()
    assert tempfiles.sweep(tmp_path) == [mine]


def test_a_zombie_does_not_keep_a_leftover(tmp_path: Path):
    """A pybuild killed with -9 that its parent has not reaped yet still has its pid: it is dead all the same."""
    child = subprocess.Popen(["sleep", "600"])
    leftover = tmp_path / f"upper-{child.pid}-0123456789ab"
    leftover.mkdir()
    child.send_signal(signal.SIGKILL)
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, but not reaped: a zombie
        assert tempfiles.sweep(tmp_path) == [leftover]
    finally:
        child.wait()
