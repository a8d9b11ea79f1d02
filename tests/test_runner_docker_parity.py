"""``pybuild run`` against ``docker run`` on the same image: same output, same exit code.

One busybox rootfs, imported into docker (``docker import --change``) and into
pybuild with the same config, then each case runs in both.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from runner_helpers import image_variant, needs_root

pytestmark = [needs_root, pytest.mark.docker]

CONFIG = {"Entrypoint": ["/bin/echo", "ep"], "Cmd": ["cmd"], "Env": ["PATH=/bin", "A=image"],
          "WorkingDir": "/srv", "User": "app"}

SHOW = "id; pwd; echo $A $B $HOME"
CASES = [  # (flags, command)
    ([], []),
    ([], ["args", "given"]),
    (["--entrypoint", ""], ["/bin/echo", "cleared"]),
    (["--entrypoint", "/bin/echo"], []),
    (["--entrypoint", "/bin/sh"], ["-c", SHOW]),
    (["-u", "0", "-w", "/tmp", "-e", "A=flag", "-e", "B=2", "--entrypoint", "/bin/sh"], ["-c", SHOW]),
    (["-u", "app:nogroup", "--entrypoint", "id"], []),
    (["-u", "4242", "--entrypoint", "/bin/sh"], ["-c", "id; echo $HOME"]),
    (["--entrypoint", "/bin/sh"], ["-c", "exit 42"]),
    (["--entrypoint", "nosuchcmd"], []),
    (["--entrypoint", "/etc/passwd"], []),
    (["-u", "ghost", "--entrypoint", "id"], []),
    (["--hostname", "parity", "--entrypoint", "/bin/sh"], ["-c", "hostname; cat /etc/hostname"]),
    (["--network", "none", "--entrypoint", "/bin/sh"], ["-c", "ip -o link | cut -d: -f2 | tr -d ' '"]),
    (["--read-only", "--entrypoint", "/bin/sh"], ["-c", "touch /x 2>/dev/null; echo $?"]),
    (["--entrypoint", "/bin/sh"], ["-c", "grep -E '^Cap(Bnd|Eff)' /proc/self/status"]),
    (["-u", "0", "--entrypoint", "/bin/sh"], ["-c", "grep -E '^Cap(Bnd|Eff|Prm)' /proc/self/status"]),
    (["-u", "0", "--cap-drop", "ALL", "--cap-add", "CHOWN", "--entrypoint", "/bin/sh"],
     ["-c", "grep -E '^CapBnd' /proc/self/status"]),
    (["--entrypoint", "/bin/sh"], ["-c", "ls /dev | sort | tr '\\n' ' '"]),
    (["--entrypoint", "/bin/sh"], ["-c", "cat /etc/hosts /etc/resolv.conf"]),
    (["--tmpfs", "/scratch", "-u", "0", "--entrypoint", "/bin/sh"], ["-c", "touch /scratch/f && ls /scratch && stat -c %a /scratch"]),
    (["--entrypoint", "/bin/sh"], ["-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$"]),
    (["--init", "--entrypoint", "/bin/sh"], ["-c", "cat /proc/1/cmdline | tr '\\0' ' '"]),  # (docker's child is not pid 2)
    (["--init", "-u", "4242", "--entrypoint", "/bin/sh"], ["-c", "grep -E '^(Cap(Bnd|Eff|Prm)|Uid)' /proc/1/status"]),
    (["--init", "--entrypoint", "/bin/sh"], ["-c", "exit 42"]),
]


@pytest.fixture(scope="module")
def docker_image(docker, busybox_tar):
    name = f"pybuild-parity:{os.getpid()}"
    changes = [f"{key.upper() if key != 'WorkingDir' else 'WORKDIR'} {json.dumps(value) if isinstance(value, list) else value}"
               for key, value in CONFIG.items() if key != "Env"]
    changes += [f"ENV {item.replace('=', ' ', 1)}" for item in CONFIG["Env"]]
    args = [a for change in changes for a in ("--change", change)]
    subprocess.run([docker, "import", *args, str(busybox_tar), name], check=True, capture_output=True)
    yield name
    subprocess.run([docker, "rmi", "-f", name], capture_output=True)


def normalise(text: bytes) -> str:
    return text.decode().strip()


@pytest.mark.parametrize("flags,command", CASES, ids=[" ".join(f + c) or "defaults" for f, c in CASES])
def test_same_as_docker(docker, docker_image, pybuild, root, busybox_image, flags, command):
    ours = image_variant(root, busybox_image, "parity:1", **CONFIG)
    # docker's default network is a bridge this host does not have; pybuild's default is the host's
    network = [] if "--network" in flags else ["--network", "host"]
    theirs = subprocess.run([docker, "run", "--rm", *network, *flags, docker_image, *command], capture_output=True)
    mine = pybuild("run", "--rm", *flags, ours, *command, check=False)
    assert mine.returncode == theirs.returncode, (mine.stderr, theirs.stderr)
    if theirs.returncode in (0, 42):
        assert normalise(mine.stdout) == normalise(theirs.stdout)
