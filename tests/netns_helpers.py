"""A network namespace per test, and the pybuild CLI running inside it.

Bridge-network tests must not touch the host's interfaces or iptables tables: each
test gets its own namespace (``ip netns add`` with a unique name, ``lo`` up), every
pybuild command runs in it through ``nsenter --net`` (the mount namespace stays the
host's, so the namespace files pybuild bind-mounts under its root are visible to the
next command), and the namespace is deleted at the end, with whatever is left in it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import CLI


class NetnsCLI(CLI):
    """``pybuild`` in the test's network namespace, with docker's default (bridge) network."""

    def __init__(self, root: Path, netns: str):
        super().__init__(root)
        self.netns = netns
        self.env = {k: v for k, v in self.env.items() if k != "PYBUILD_NETWORK"}
        self.prefix = ["nsenter", f"--net=/run/netns/{netns}"]

    def host(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """A command on the test's "host": its network namespace."""
        return subprocess.run(self.prefix + list(argv), capture_output=True, text=True, check=check, timeout=60)


@pytest.fixture
def netns() -> str:
    """A fresh network namespace with ``lo`` up; deleted (with its bridges, veths, rules) after the test."""
    name = f"pybuild-test-{uuid.uuid4().hex[:12]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def netcli(root: Path, netns: str, busybox_rootfs: Path):
    """pybuild in ``netns`` with busybox imported; removes every container afterwards."""
    cli = NetnsCLI(root, netns)
    cli("import", str(busybox_rootfs), "busybox:latest")
    yield cli
    ids = cli("ps", "-aq", check=False).stdout.decode().split()
    if ids:
        cli("rm", "-f", *ids, check=False)
    netns_dir = root / "netns"
    if netns_dir.is_dir():
        for entry in os.listdir(netns_dir):
            subprocess.run(["umount", "-l", str(netns_dir / entry)], capture_output=True)
