"""``run --init``: pid 1 is tini, with the container's privileges, showing only itself.

Docker runs its copy of tini (``/sbin/docker-init``) the same way; the signal and
exit-code cases run under both and must agree.
"""

from __future__ import annotations

import os
import select
import subprocess

import pytest

from conftest import PYBUILD
from runner_helpers import needs_root

pytestmark = needs_root

STATUS_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Uid", "Gid")


def status_of(text: str, pid: str) -> dict[str, str]:
    """``/proc/PID/status`` fields from ``grep -H`` output of several status files."""
    out = {}
    for line in text.splitlines():
        path, _, rest = line.partition(":")
        key, _, value = rest.partition(":")
        if path == f"/proc/{pid}/status" and key in STATUS_FIELDS:
            out[key] = value.strip()
    return out


def test_pid1_shows_only_itself_and_the_command(pybuild, busybox_image):
    """Neither pybuild's command line (with its -e secret) nor its environment is in the container's /proc."""
    script = ("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done; echo ====; "
              "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done")
    proc = pybuild("run", "--rm", "--init", "-e", "SECRET=cli-secret-4711", busybox_image, "sh", "-c", script,
                   env={"HOST_ONLY_MARKER": "host-env-0815"})
    cmdlines, _, environ = proc.stdout.decode().partition("====\n")
    first = cmdlines.splitlines()[0]  # /proc/1
    assert first == f"/sbin/docker-init -- sh -c {script} "
    assert "cli-secret-4711" not in cmdlines and "pybuild" not in cmdlines and "python" not in cmdlines
    assert "host-env-0815" not in environ and "PYBUILD_ROOT" not in environ
    assert "SECRET=cli-secret-4711" in environ.splitlines()  # the container's own environment, as with docker


@pytest.mark.parametrize("flags", [[], ["-u", "1000"], ["--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN"]])
def test_pid1_has_the_containers_privileges(pybuild, busybox_image, flags):
    proc = pybuild("run", "--rm", "--init", *flags, busybox_image, "sh", "-c",
                   "grep -H '' /proc/1/status /proc/self/status")
    text = proc.stdout.decode()
    init, command = status_of(text, "1"), status_of(text, "self")
    assert len(init) == len(STATUS_FIELDS) and init == command
    assert init["Seccomp"] == "2" and init["NoNewPrivs"] == "1"
    assert int(init["CapBnd"], 16) != 0x1FFFFFFFFFF  # not the host's full set


@pytest.fixture(scope="module")
def docker_busybox(docker, busybox_tar):
    name = f"pybuild-init:{os.getpid()}"
    subprocess.run([docker, "import", str(busybox_tar), name], check=True, capture_output=True)
    yield name
    subprocess.run([docker, "rmi", "-f", name], capture_output=True)


TRAP = "trap 'echo got; exit 42' TERM; echo ready > /ctl/ready; while :; do sleep 0.05; done"


def _run_signalled(argv: list[str], kill: list[str], ctl, env: dict[str, str]) -> tuple[int, bytes]:
    """Start ``argv`` in the foreground, wait until its trap is set (it writes the FIFO
    ``ctl/ready``), send the signal with ``kill``; (exit code, stdout)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    fd = os.open(ctl / "ready", os.O_RDONLY | os.O_NONBLOCK)  # select() waits for the writer's line
    try:
        ready, _, _ = select.select([fd], [], [], 60)  # a deadline for a broken start, not a synchronisation
        assert ready and os.read(fd, 64) == b"ready\n", proc.stderr.read1() if proc.poll() is not None else b""
    finally:
        os.close(fd)
    subprocess.run(kill, check=True, capture_output=True, env=env)
    stdout, _ = proc.communicate(timeout=60)
    return proc.returncode, stdout


@pytest.mark.docker
def test_signals_and_exit_codes_like_docker_init(docker, docker_busybox, pybuild, busybox_image, tmp_path):
    cases = [["sh", "-c", "exit 3"], ["sh", "-c", "kill -KILL $$"], ["nosuchcmd"],
             ["sh", "-c", "trap 'exit 42' TERM; kill -TERM 1; while :; do sleep 0.05; done"]]
    for command in cases:
        theirs = subprocess.run([docker, "run", "--rm", "--init", "--network", "host", docker_busybox, *command],
                                capture_output=True)
        mine = pybuild("run", "--rm", "--init", busybox_image, *command, check=False)
        assert (command, mine.returncode) == (command, theirs.returncode)
    # a signal sent to the container from outside reaches the command through tini
    codes = []
    for tool in ("docker", "pybuild"):
        ctl = tmp_path / tool
        ctl.mkdir()
        os.mkfifo(ctl / "ready")
        name = f"pybuild-init-{os.getpid()}"
        if tool == "docker":
            argv = [docker, "run", "--rm", "--init", "--name", name, "--network", "host", "-v", f"{ctl}:/ctl",
                    docker_busybox, "sh", "-c", TRAP]
            kill = [docker, "kill", "-s", "TERM", name]
        else:
            argv = [PYBUILD, "run", "--rm", "--init", "--name", name, "-v", f"{ctl}:/ctl", busybox_image, "sh", "-c", TRAP]
            kill = [PYBUILD, "kill", "-s", "TERM", name]
        codes.append(_run_signalled(argv, kill, ctl, pybuild.env))
    assert codes[0] == codes[1] == (42, b"got\n")


def test_missing_tini_is_one_clear_line(pybuild, busybox_image):
    """Without Debian's tini, --init refuses to start instead of running something else as pid 1."""
    script = 'mount -t tmpfs none /usr/bin && exec "$@"'  # hides /usr/bin/tini-static in this mount namespace
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", PYBUILD,
                           "run", "--rm", "--init", busybox_image, "true"], capture_output=True, env=pybuild.env)
    lines = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 125 and len(lines) == 1 and "tini" in lines[0], proc.stderr
