"""docker-compose 1.29 against ``pybuild system service`` (issue 15): examples/compose
(a web service built from a Dockerfile with a healthcheck, a worker that waits for it to
be healthy, a user-defined network, a named volume, a published port) comes up, answers,
shows in ps and logs, and ``down -v`` leaves nothing behind.  The service runs inside a
network namespace the test creates: bridges, veths and rules never touch the host's."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from netns_helpers import netns  # noqa: F401
from service_helpers import Service

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "compose"
PORT = "18555"  # free: the namespace is new

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")


def test_compose_up_ps_logs_down(netns, root, pybuild, busybox_rootfs):  # noqa: F811
    pybuild("import", str(busybox_rootfs), "busybox:latest")
    svc = Service(root, root / "api.sock", netns=netns)
    svc.start()
    try:
        _up_ps_logs_down(svc, netns, pybuild)
    finally:
        svc.kill()
        leftovers = pybuild("ps", "-aq", check=False).stdout.decode().split()
        if leftovers:
            pybuild("rm", "-f", *leftovers, check=False)


def _up_ps_logs_down(svc: Service, netns: str, pybuild) -> None:  # noqa: F811
    project = f"svc{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DOCKER_HOST": svc.url, "WEB_PORT": PORT, "COMPOSE_PROJECT_NAME": project}

    def compose(*args: str) -> str:
        proc = subprocess.run(["docker-compose", "-f", str(EXAMPLE / "docker-compose.yml"), *args], env=env,
                              capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout.decode()

    def in_netns(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net=/run/netns/{netns}", *argv], capture_output=True, text=True,
                              timeout=60)

    try:
        compose("up", "-d", "--build")
        # `up` created the worker only once the web service was healthy
        web = svc.docker("inspect", "-f", "{{.State.Health.Status}}", f"{project}_web_1").stdout.decode().strip()
        assert web == "healthy"
        assert in_netns("busybox", "wget", "-q", "-O", "-", f"http://127.0.0.1:{PORT}/").stdout == "hello from compose\n"
        table = compose("ps")
        assert f"{project}_web_1" in table and "Up (healthy)" in table and f"0.0.0.0:{PORT}->80/tcp" in table
        assert f"{project}_worker_1" in table
        logs = ""
        while "worker fetched" not in logs:  # the worker logs once its wget through the network is done
            logs = compose("logs", "--no-color", "worker")
            assert "Exit" not in compose("ps", "worker"), logs
        assert "worker fetched: hello from compose" in logs
        # the worker reached the web service by its name, over the project network, and wrote into the volume
        assert svc.docker("volume", "ls", "-q").stdout.decode().split() == [f"{project}_data"]
    finally:
        down = subprocess.run(["docker-compose", "-f", str(EXAMPLE / "docker-compose.yml"), "down", "-v"], env=env,
                              capture_output=True, timeout=300)
    assert down.returncode == 0, down.stderr.decode()
    assert pybuild("ps", "-aq").stdout == b""
    assert svc.docker("volume", "ls", "-q").stdout == b""
    assert project not in svc.docker("network", "ls").stdout.decode()
    links = in_netns("ip", "-br", "link").stdout.split("\n")
    assert [line.split()[0] for line in links if line.strip()] == ["lo"]
    rules = in_netns("iptables-save").stdout
    assert PORT not in rules and "CNI-DN-" not in rules
