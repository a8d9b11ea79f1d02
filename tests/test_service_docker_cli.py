"""The docker CLI driving ``pybuild system service`` (issue 15): the same command list
against dockerd and against the service, comparing exit codes and what the containers
printed.  Containers use the host network on both sides (bridge networks are made only
inside namespaces the network tests create)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from service_helpers import service  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

# (argv with placeholders, what to compare besides the exit code: "out", "both" or "")
SCRIPT = [
    (["version", "--format", "{{.Server.APIVersion}}"], "out"),
    (["info", "--format", "{{.OSType}}"], "out"),
    (["run", "--rm", "--network", "host", "{img}", "sh", "-c", "echo out; echo err >&2; exit 3"], "both"),
    (["run", "--rm", "--network", "host", "{img}", "nosuchcmd"], ""),
    (["run", "--rm", "--network", "host", "-e", "A=b", "-w", "/tmp", "-u", "1000", "{img}",
      "sh", "-c", "echo $A; pwd; id -u"], "out"),
    (["run", "-d", "--name", "{name}", "--network", "host", "-l", "role=svc-test", "{img}", "sh", "-c",
      "echo one; echo two >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"], ""),
    (["exec", "{name}", "sh", "-c", "echo in-exec; echo exec-err >&2; exit 4"], "both"),
    (["exec", "-e", "X=y", "-w", "/etc", "{name}", "sh", "-c", "echo $X; pwd"], "out"),
    (["ps", "--filter", "name={name}", "--format", "{{.Names}} {{.State}} {{.Image}}"], "out"),
    (["ps", "-a", "--filter", "label=role=svc-test", "--filter", "name={name}", "--format", "{{.Names}}"], "out"),
    (["inspect", "-f", "{{.State.Running}} {{.Config.Labels.role}}", "{name}"], "out"),
    (["stop", "{name}"], "out"),
    (["logs", "{name}"], "both"),
    (["logs", "-f", "{name}"], "both"),
    (["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "{name}"], "out"),
    (["ps", "-a", "--filter", "name={name}", "--filter", "status=exited", "--format", "{{.Names}}"], "out"),
    (["exec", "{name}", "true"], ""),
    (["rm", "{name}"], "out"),
    (["ps", "-aq", "--filter", "name={name}"], "out"),
    (["rm", "{name}"], ""),
    (["inspect", "{name}"], ""),
    (["run", "--name", "{name}2", "--network", "host", "{img}", "sh", "-c", "echo kept; exit 5"], "out"),
    (["wait", "{name}2"], "out"),
    (["logs", "{name}2"], "out"),
    (["rm", "-f", "{name}2"], "out"),
    (["tag", "{img}", "{img2}"], "out"),
    (["images", "--format", "{{.Repository}}:{{.Tag}}", "{repo2}"], "out"),
    (["inspect", "--type", "image", "-f", "{{.Os}} {{.Config.Cmd}}", "{img2}"], "out"),
    (["rmi", "{img2}"], "out"),
    (["rmi", "{img2}"], ""),
    (["build", "-q", "-t", "{img3}", "{ctx}"], ""),
    (["run", "--rm", "--network", "host", "{img3}"], "out"),
    (["build", "-f", "{ctx}/Dockerfile.bad", "{ctx}"], ""),
    (["rmi", "{img3}"], ""),
    (["network", "create", "{net}"], ""),
    (["network", "ls", "--filter", "name={net}", "--format", "{{.Name}} {{.Driver}}"], "out"),
    (["network", "inspect", "-f", "{{.Name}} {{.Driver}}", "{net}"], "out"),
    (["network", "create", "{net}"], ""),
    (["network", "rm", "{net}"], "out"),
    (["network", "rm", "{net}"], ""),
    (["volume", "create", "{vol}"], "out"),
    (["volume", "ls", "--filter", "name={vol}", "--format", "{{.Name}} {{.Driver}}"], "out"),
    (["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "{vol}"], "out"),
    (["run", "--rm", "--network", "host", "-v", "{vol}:/data", "{img}", "sh", "-c", "echo kept > /data/f"], "out"),
    (["run", "--rm", "--network", "host", "-v", "{vol}:/data", "{img}", "cat", "/data/f"], "out"),
    (["volume", "rm", "{vol}"], "out"),
    (["volume", "rm", "{vol}"], ""),
]


def _context(tmp_path: Path, image: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f'FROM {image}\nRUN echo built > /msg\nCOPY f /f\nCMD ["cat", "/msg", "/f"]\n')
    (ctx / "Dockerfile.bad").write_text(f"FROM {image}\nRUN exit 3\n")
    (ctx / "f").write_text("from the context\n")
    return ctx


def test_docker_cli_same_against_dockerd_and_service(service, pybuild, busybox_rootfs, busybox_tar, tmp_path):  # noqa: F811
    tag = uuid.uuid4().hex[:10]
    values = {"img": f"pybuild-svc-{tag}:1", "img2": f"pybuild-svc2-{tag}:2", "repo2": f"pybuild-svc2-{tag}",
              "img3": f"pybuild-svc3-{tag}:1", "name": f"svc-{tag}", "net": f"svcnet-{tag}", "vol": f"svcvol-{tag}"}
    values["ctx"] = str(_context(tmp_path, values["img"]))
    pybuild("import", str(busybox_rootfs), values["img"])
    subprocess.run(["docker", "import", str(busybox_tar), values["img"]], check=True, capture_output=True)
    try:
        for argv, compare in SCRIPT:
            args = [a.format(**values) if "{" in a and "{{" not in a else a for a in argv]
            theirs = subprocess.run(["docker", *args], capture_output=True, timeout=120)
            ours = service.docker(*args, check=False)
            where = f"docker {' '.join(args)}\nours: {ours.stderr.decode()}\ntheirs: {theirs.stderr.decode()}"
            assert ours.returncode == theirs.returncode, where
            if compare in ("out", "both") and args[0] != "version":
                assert ours.stdout == theirs.stdout, where
            if compare == "both":
                assert ours.stderr == theirs.stderr, where
    finally:
        for cmd in (["rm", "-f", values["name"], values["name"] + "2"],
                    ["rmi", "-f", values["img"], values["img2"], values["img3"]],
                    ["network", "rm", values["net"]], ["volume", "rm", "-f", values["vol"]]):
            subprocess.run(["docker", *cmd], capture_output=True)


def test_stdin_and_tty_same_as_dockerd(service, pybuild, busybox_rootfs, busybox_tar):  # noqa: F811
    """``run -i`` (stdin to EOF) and ``run -it`` (a pty, through ``script``) on both sides."""
    image = f"pybuild-svc-tty-{uuid.uuid4().hex[:10]}:1"
    pybuild("import", str(busybox_rootfs), image)
    subprocess.run(["docker", "import", str(busybox_tar), image], check=True, capture_output=True)
    piped = ["run", "-i", "--rm", "--network", "host", image, "sh", "-c", "read x; echo got:$x; cat; exit 6"]
    tty = ("docker run -it --rm --network host " + image +
           " sh -c 'tty; read x; echo got:$x; exit 7'")
    try:
        theirs = subprocess.run(["docker", *piped], input=b"first\nsecond\n", capture_output=True, timeout=60)
        ours = service.docker(*piped, input=b"first\nsecond\n", check=False)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (6, b"got:first\nsecond\n")
        runs = [subprocess.run(["script", "-qec", tty, "/dev/null"], input=b"typed\n", capture_output=True,
                               timeout=60, env={**env, "DOCKER_BUILDKIT": "0"})
                for env in ({k: v for k, v in os.environ.items() if k != "DOCKER_HOST"},
                            {**os.environ, "DOCKER_HOST": service.url})]
        lines = [set(r.stdout.decode().replace("\r", "").splitlines()) for r in runs]
        assert [r.returncode for r in runs] == [7, 7]
        assert {"/dev/pts/0", "got:typed"} <= lines[0] and {"/dev/pts/0", "got:typed"} <= lines[1]
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def test_push_and_pull_through_the_service(service, busybox_image, plain_registry):  # noqa: F811
    """``docker push`` through the service reaches the registry (dockerd pulls and runs what it
    pushed); ``docker pull`` through the service brings it back after an ``rmi``."""
    remote = f"{plain_registry.host}/svc/pushed-{uuid.uuid4().hex[:10]}:1"
    service.docker("tag", busybox_image, remote)
    pushed = service.docker("push", remote)
    assert b"digest: sha256:" in pushed.stdout
    try:
        subprocess.run(["docker", "pull", remote], check=True, capture_output=True, timeout=120)
        theirs = subprocess.run(["docker", "run", "--rm", "--network", "host", remote, "echo", "pulled"],
                                capture_output=True, timeout=120)
        assert theirs.stdout == b"pulled\n"
    finally:
        subprocess.run(["docker", "rmi", "-f", remote], capture_output=True)
    service.docker("rmi", remote)
    assert service.docker("images", "-q", remote).stdout == b""
    service.docker("pull", remote)
    ours = service.docker("run", "--rm", "--network", "host", remote, "echo", "pulled")
    assert ours.stdout == b"pulled\n"
    failed = service.docker("pull", f"{plain_registry.host}/svc/nosuch:1", check=False)
    assert failed.returncode == 1 and b"nosuch" in failed.stderr
