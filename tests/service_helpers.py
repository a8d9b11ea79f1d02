"""The Engine API service as a test fixture: ``pybuild system service`` on a socket in
the test's root, and the docker CLI pointed at it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import CLI, PYBUILD


class Service:
    """A running ``pybuild system service``; ``docker(...)`` runs the docker CLI against it."""

    def __init__(self, root: Path, socket: Path, netns: str | None = None):
        self.root = root
        self.socket = socket
        self.url = f"unix://{socket}"
        self.proc: subprocess.Popen | None = None
        self.netns = netns  # run in this network namespace, with docker's default (bridge) network

    def start(self) -> None:
        """Start it and return once it listens (it says so on stderr after binding)."""
        env = {**os.environ, "PYBUILD_ROOT": str(self.root)}
        prefix: list[str] = []
        if self.netns:
            env.pop("PYBUILD_NETWORK", None)
            prefix = ["nsenter", f"--net=/run/netns/{self.netns}"]
        self.proc = subprocess.Popen([*prefix, PYBUILD, "system", "service", "--socket", self.url], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        line = self.proc.stderr.readline().decode()  # type: ignore[union-attr]
        assert "serving the Engine API" in line, line

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def docker(self, *args: str, check: bool = True, input: bytes | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCKER_HOST": self.url, "DOCKER_BUILDKIT": "0"}
        proc = subprocess.run(["docker", *args], env=env, capture_output=True, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} (service) exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout.decode(errors='replace')}\n"
                                 f"stderr: {proc.stderr.decode(errors='replace')}")
        return proc


@pytest.fixture
def service(root: Path, pybuild: CLI):
    """The service on ``$ROOT/api.sock``; its containers are removed afterwards."""
    svc = Service(root, root / "api.sock")
    svc.start()
    yield svc
    svc.kill()
    ids = pybuild("ps", "-aq", check=False).stdout.decode().split()
    if ids:
        pybuild("rm", "-f", *ids, check=False)
