"""A real unprivileged user for the rootless tests, and pybuild run as that user.

The fixture creates a user with a unique name and its own /etc/subuid and /etc/subgid
ranges (``useradd``, ``usermod --add-subuids``), and removes it afterwards.  pybuild
runs as that user through ``runuser`` with an interpreter the user can execute and
this tree plus the venv's site-packages on ``PYTHONPATH`` (copied into a directory of
the test's when the user cannot read them where they are).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("base", "registry", "runner", "builder")


class RootlessUser:
    """A throwaway user with subordinate ids and a home the tests write into."""

    def __init__(self, name: str, uid: int, home: Path, sub_start: int):
        self.name, self.uid, self.home, self.sub_start = name, uid, home, sub_start

    def as_user(self, argv: list[str], env: dict[str, str], cwd: str, **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv`` as this user with exactly ``env`` (plus HOME and PATH)."""
        full = {"HOME": str(self.home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env}
        return subprocess.run(["runuser", "-u", self.name, "--", "env", "-i",
                               *[f"{k}={v}" for k, v in full.items()], *argv], cwd=cwd, **kwargs)

    def can_read(self, path: Path) -> bool:
        return self.as_user(["test", "-r", str(path)], {}, "/").returncode == 0


def _free_sub_start() -> int:
    """A /etc/subuid start no entry overlaps (subuid and subgid alike)."""
    highest = 100000
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            for line in Path(path).read_text().splitlines():
                parts = line.split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    highest = max(highest, int(parts[1]) + int(parts[2]))
        except OSError:
            pass
    return highest + 65536


@pytest.fixture(scope="session")
def rootless_user():
    """A fresh user with a 65536-id subordinate range; removed after the session."""
    if os.geteuid() != 0:
        pytest.skip("creating a test user needs root")
    name = f"pbrl{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "-m", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", "-s", "/bin/sh", name],
                   check=True, capture_output=True)
    try:
        start = _free_sub_start()
        rng = f"{start}-{start + 65535}"
        subprocess.run(["usermod", "--add-subuids", rng, "--add-subgids", rng, name], check=True, capture_output=True)
        import pwd

        entry = pwd.getpwnam(name)
        yield RootlessUser(name, entry.pw_uid, Path(entry.pw_dir), start)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)  # only this test user's processes
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


def _interpreter(user: RootlessUser) -> str:
    """An interpreter of this Python's version the user may run (the venv's may live under /root)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/python{version}"):
        if os.path.exists(candidate) and user.as_user([candidate, "-c", "pass"], {}, "/").returncode == 0:
            return candidate
    pytest.fail(f"no python{version} the test user can run (the venv's interpreter is not readable by others)")


@pytest.fixture(scope="session")
def rootless_pythonpath(rootless_user: RootlessUser, tmp_path_factory) -> tuple[str, str]:
    """``(interpreter, PYTHONPATH)`` the test user runs pybuild with."""
    site = Path(sysconfig.get_paths()["purelib"])
    paths = [REPO, site]
    if not all(rootless_user.can_read(p / "builder" / "cli.py") if p is REPO else rootless_user.can_read(p)
               for p in paths):
        copy = Path(tempfile.mkdtemp(prefix="pybuild-rootless-src-"))
        copy.chmod(0o755)
        for pkg in PACKAGES:
            shutil.copytree(REPO / pkg, copy / "src" / pkg, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(site, copy / "site", ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["chmod", "-R", "a+rX", str(copy)], check=True)
        paths = [copy / "src", copy / "site"]
    return _interpreter(rootless_user), ":".join(str(p) for p in paths)


class RootlessCLI:
    """``pybuild`` run as the test user against a root the user owns."""

    def __init__(self, user: RootlessUser, python: str, pythonpath: str, root: Path, workdir: Path):
        self.user, self.python, self.pythonpath, self.root, self.workdir = user, python, pythonpath, root, workdir
        self.env = {"PYTHONPATH": pythonpath, "PYBUILD_ROOT": str(root), "PYBUILD_NETWORK": "host"}

    def __call__(self, *args: str, check: bool = True, input: bytes | None = None, timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = self.user.as_user([self.python, "-m", "builder.cli", *args], {**self.env, **(env or {})},
                                 cwd=str(self.workdir), input=input, capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"rootless pybuild {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout.decode(errors='replace')}\n"
                                 f"stderr: {proc.stderr.decode(errors='replace')}")
        return proc

    def give(self, path: Path) -> Path:
        """Hand ``path`` (a tree the test made) to the user, so a build can read it as its context."""
        subprocess.run(["chown", "-R", "-h", f"{self.user.name}:", str(path)], check=True)
        return path


@pytest.fixture
def rootless(rootless_user: RootlessUser, rootless_pythonpath: tuple[str, str]):
    """The CLI as the test user, with a private workdir (mode 0700, the user's) holding its root."""
    work = Path(tempfile.mkdtemp(prefix="pybuild-rootless-"))
    os.chown(work, rootless_user.uid, -1)
    try:
        yield RootlessCLI(rootless_user, *rootless_pythonpath, work / "root", work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
