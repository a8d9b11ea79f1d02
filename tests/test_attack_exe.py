"""CVE-2019-5736 as a test: no host binary is reachable through a container's /proc/*/exe.

The image's command is a ``#!/proc/self/exe`` script, so the kernel runs whatever the
process that execs into the container runs from; the container keeps an O_PATH
handle on it and tries to write once pybuild is gone.  The attacker's helpers are
static C programs in tests/data, built at test time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import pytest

from conftest import PYBUILD
from runner_helpers import needs_root
from static_programs import build_static

pytestmark = needs_root
DATA = Path(__file__).parent / "data"


def run(pybuild, *args, **kw) -> subprocess.CompletedProcess:
    return pybuild("run", "--rm", *args, check=False, **kw)


EVIL_SCRIPT = """#!/proc/self/exe -S
import os
fd = os.open("/proc/self/exe", os.O_PATH)
os.set_inheritable(fd, True)
os.execv("/bin/exe_attack", ["exe_attack", str(fd), "/ctl"])
"""


def _interpreter_of(script: str) -> str:
    """The real path of the interpreter a console script (``#!...python``) runs."""
    with open(script) as fh:
        return os.path.realpath(fh.readline()[2:].strip())


def _shared_libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    paths = [word for line in out.splitlines() for word in line.split() if word.startswith("/")]
    return sorted(set(paths))


@pytest.fixture
def exe_attack_image(pybuild, busybox_rootfs, tmp_path) -> str:
    """busybox + the attacker's static helper + what the host's interpreter needs to start
    inside the container (its shared libraries at their host paths, an ``encodings``
    package under PYTHONHOME=/py): an image made for this host, as a real attacker would."""
    python = _interpreter_of(PYBUILD)
    rootfs = tmp_path / "evil-rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    build_static(DATA / "exe_attack.c", rootfs / "bin" / "exe_attack")
    for lib in _shared_libraries(python):
        dest = rootfs / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lib, dest)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(stdlib / "encodings", rootfs / "py" / "lib" / stdlib.name / "encodings")
    (rootfs / "bin" / "evil").write_text(EVIL_SCRIPT)
    (rootfs / "bin" / "evil").chmod(0o755)
    pybuild("import", str(rootfs), "evil:1")
    return "evil:1"


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class _Report(threading.Thread):
    """Reads the attacker's report FIFO; ``first`` is set once its first line is in."""

    def __init__(self, fifo: Path):
        super().__init__(daemon=True)
        self.fifo = fifo
        self.lines: list[str] = []
        self.first = threading.Event()

    def run(self) -> None:
        with open(self.fifo) as fh:
            for line in fh:
                self.lines.append(line.strip())
                self.first.set()
        self.first.set()


@pytest.mark.parametrize("entry", ["run", "exec"])
def test_host_interpreter_is_not_reachable_through_proc_self_exe(pybuild, root, exe_attack_image, tmp_path, entry):
    """The image's command is a ``#!/proc/self/exe`` script: the kernel runs whatever
    the process that execs into the container runs from.  The container keeps an
    O_PATH handle on it and writes once the pybuild process that started it is gone
    (``run -d``) or from a process of ``exec``: the host's binary must not be there."""
    python = _interpreter_of(PYBUILD)
    # Safety: the attacker's open uses O_TRUNC, which fails before truncating while the
    # file is being executed; this very test process must be executing it.
    if not os.path.samefile(os.path.realpath(sys.executable), python):
        pytest.skip("pytest must run on pybuild's own interpreter (keeps the attack harmless if it works)")
    before = _sha256(python)
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    os.mkfifo(ctl / "report")
    os.mkfifo(ctl / "go")
    entering = None
    if entry == "run":
        pybuild("run", "-d", "--name", "cve", "-e", "PYTHONHOME=/py", "-v", f"{ctl}:/ctl", exe_attack_image, "/bin/evil")
        # the `pybuild run -d` that started the container has exited; the container holds its handle
    else:
        pybuild("run", "-d", "--name", "cve", "-v", f"{ctl}:/ctl", exe_attack_image, "sleep", "3600")
        entering = subprocess.Popen([PYBUILD, "exec", "-e", "PYTHONHOME=/py", "cve", "/bin/evil"], env=pybuild.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    report = _Report(ctl / "report")
    report.start()
    if not report.first.wait(60):  # a deadline for a broken run, not a synchronisation
        logs = pybuild("logs", "cve", check=False)
        pytest.fail(f"the attacker never reported: {logs.stdout!r} {logs.stderr!r}")
    with open(ctl / "go", "w") as go:  # the attacker is waiting on it now
        go.write("go\n")
    report.join(60)
    lines = report.lines
    if entering is not None:
        entering.communicate(timeout=60)
    assert lines[0].startswith("holding "), lines  # the kernel did run our interpreter inside the container
    outcome = lines[1]
    assert outcome != "open ETXTBSY", "the host binary is only protected because something executes it"
    assert outcome == "open EROFS", lines
    assert _sha256(python) == before
    pybuild("rm", "-f", "cve")


def test_init_binary_cannot_be_made_writable_even_with_sys_admin(pybuild, busybox_rootfs, tmp_path):
    """tini (pid 1 under --init) runs from a detached read-only clone of its mount: with
    CAP_SYS_ADMIN (and seccomp allowing mount), the container can neither remount it
    nor clear its read-only flag, and opening /proc/1/exe for writing fails with EROFS."""
    from runner.sandbox import INIT_BINARY

    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    build_static(DATA / "remount_exe.c", rootfs / "bin" / "remount_exe")
    pybuild("import", str(rootfs), "remount:1")
    before = _sha256(INIT_BINARY)
    out = run(pybuild, "--init", "--cap-add", "SYS_ADMIN", "remount:1", "/bin/remount_exe").stdout.decode()
    assert out.splitlines() == ["remount EINVAL", "mount_setattr EINVAL", "open_write EROFS"]
    assert _sha256(INIT_BINARY) == before
