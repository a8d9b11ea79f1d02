"""base/safepath: every lookup stays inside the root, with openat2 and with the fd walk.

Each test runs twice: once with the kernel's openat2(RESOLVE_IN_ROOT) and once with the
by-hand walk, which must give the same answers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from base import safepath


@pytest.fixture(params=["openat2", "walk"])
def backend(request, monkeypatch):
    monkeypatch.setattr(safepath, "use_openat2", request.param == "openat2")
    if request.param == "openat2":
        fd = os.open("/", os.O_PATH)
        try:
            assert safepath.openat2(fd, "tmp", os.O_PATH) is not None, "this kernel has openat2 (5.6+)"
        finally:
            os.close(fd)
    return request.param


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """``outside/secret`` next to a ``root`` full of escaping symlinks."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "secret").write_text("inside\n")
    (root / "abs").symlink_to("/etc")
    (root / "up").symlink_to("../outside")  # the real outside dir, seen from root/
    (root / "dotdot").symlink_to("../" * 20 + "etc")
    (root / "hostpath").symlink_to(str(outside))
    (root / "dangling").symlink_to("/made/by/link")
    (root / "loop").symlink_to("loop")
    (root / "file").write_text("f\n")
    return root, outside


def test_symlinks_and_dotdot_stay_inside(backend, tree):
    root, outside = tree
    for path in ("abs/secret", "abs/../../etc/secret", "dotdot/secret", "../../etc/secret", "/../../../etc/secret"):
        fd = safepath.open_in_root(str(root), path)
        with os.fdopen(fd) as fh:
            assert fh.read() == "inside\n", path
    # an absolute host path in a symlink is taken from the root: not the host's directory
    for path in ("hostpath/secret", "up/secret"):
        with pytest.raises(FileNotFoundError):
            safepath.open_in_root(str(root), path)
    assert safepath.resolve(str(root), "hostpath/secret") == str(root / outside.relative_to("/") / "secret")
    assert safepath.resolve(str(root), "up/secret") == str(root / "outside" / "secret")
    assert safepath.resolve(str(root), "abs/secret") == str(root / "etc" / "secret")


def test_creating_through_a_dangling_symlink_makes_the_target_inside(backend, tree):
    root, _ = tree
    fd = safepath.open_dir(str(root), "dangling/sub", create=True, mode=0o750)
    os.close(fd)
    made = root / "made" / "by" / "link" / "sub"
    assert made.is_dir() and (made.stat().st_mode & 0o777) == 0o750
    assert (root / "dangling").is_symlink()


def test_create_parents_of_a_dangling_leaf(backend, tree):
    root, _ = tree
    (root / "dangling").unlink()
    (root / "dangling").symlink_to("/x/y/file")
    host = safepath.resolve(str(root), "/dangling", create_parents=True)
    assert host == str(root / "x" / "y" / "file")
    assert (root / "x" / "y").is_dir() and not os.path.lexists(host)


def test_errors(backend, tree):
    root, _ = tree
    with pytest.raises(OSError) as err:
        safepath.open_in_root(str(root), "loop/x")
    assert err.value.errno in (40,)  # ELOOP
    with pytest.raises(NotADirectoryError):
        safepath.open_dir(str(root), "file/sub", create=True)
    assert safepath.open_dir(str(root), "nothing/here") is None
    assert not (root / "nothing").exists()
    assert safepath.resolve(str(root), "file") == str(root / "file")
    assert safepath.resolve(str(root), "nothing/../etc/x") == str(root / "etc" / "x")
    with pytest.raises(NotADirectoryError):
        safepath.resolve(str(root), "file/x")


def test_replace_makes_way_for_a_directory(backend, tree):
    root, _ = tree
    fd = safepath.open_dir(str(root), "file/sub", create=True, replace=True)
    os.close(fd)
    assert (root / "file" / "sub").is_dir()


def test_no_follow_refuses_every_symlink(backend, tree):
    root, _ = tree
    (root / "etc" / "sub").mkdir()
    fd = safepath.open_dir(str(root), "etc/sub", follow=False)
    os.close(fd)
    for path in ("abs/sub", "dangling", "dotdot"):
        with pytest.raises(OSError) as err:
            safepath.open_dir(str(root), path, follow=False)
        assert err.value.errno == 40, path  # ELOOP
    assert safepath.open_dir(str(root), "etc/missing", follow=False) is None


PROBE = """
import errno, os, sys
from runner.security import load_seccomp_module
seccomp = load_seccomp_module()
f = seccomp.SyscallFilter(seccomp.ALLOW)
f.add_rule(seccomp.ERRNO(getattr(errno, sys.argv[2])), "openat2")
f.load()
from base import safepath
root = sys.argv[1]
fd = safepath.open_dir(root, "dangling/made", create=True)
os.close(fd)
print(safepath.use_openat2, safepath.resolve(root, "abs/secret"))
"""


@pytest.mark.parametrize("answer", ["ENOSYS", "EPERM"])
def test_falls_back_to_the_walk_where_seccomp_hides_openat2(tree, answer):
    # a container runtime's filter that predates openat2 answers ENOSYS (or EPERM)
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from runner.security import load_seccomp_module  # noqa: PLC0415

    if load_seccomp_module() is None:
        pytest.fail("python3-seccomp is missing (scripts/setup.sh installs it)")
    root, _ = tree
    proc = subprocess.run([sys.executable, "-c", PROBE, str(root), answer], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", str(root / "etc" / "secret")]
    assert (root / "made" / "by" / "link" / "made").is_dir()
