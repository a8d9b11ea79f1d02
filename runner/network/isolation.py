"""Keep pybuild networks apart: a container cannot reach another network's bridge.

The bridge plugin routes between bridges like any host would, and the CNI plugins
have no isolation step (docker adds its own ``DOCKER-ISOLATION`` chains).  One chain
in the ``mangle`` table, which the kernel walks before the ``filter`` FORWARD chain
where the ``firewall`` plugin accepts container traffic::

    -t mangle -A FORWARD -j PYBUILD-ISOLATION
    PYBUILD-ISOLATION:  -i pybrN -o pybrN -j RETURN   (one per network, inserted first)
                        -i pybr+ -o pybr+ -j DROP
"""

from __future__ import annotations

import subprocess

from ..errors import RunError
from .config import BRIDGE_PREFIX

CHAIN = "PYBUILD-ISOLATION"


def _iptables(*args: str, check: bool = True) -> bool:
    proc = subprocess.run(["iptables", "-w", "-t", "mangle", *args], capture_output=True,
                          env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
    if check and proc.returncode != 0:
        raise RunError(f"iptables {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.returncode == 0


def _own_rule(bridge: str) -> tuple[str, ...]:
    return ("-i", bridge, "-o", bridge, "-j", "RETURN")


def ensure(bridge: str) -> None:
    """Isolate ``bridge`` from every other pybuild bridge (one ``iptables -C`` when already done)."""
    if _iptables("-C", CHAIN, *_own_rule(bridge), check=False):
        return
    if not _iptables("-n", "-L", CHAIN, check=False):
        _iptables("-N", CHAIN, check=False)  # a concurrent start may have made it meanwhile
    if not _iptables("-C", "FORWARD", "-j", CHAIN, check=False):
        _iptables("-I", "FORWARD", "1", "-j", CHAIN)
    drop = ("-i", f"{BRIDGE_PREFIX}+", "-o", f"{BRIDGE_PREFIX}+", "-j", "DROP")
    if not _iptables("-C", CHAIN, *drop, check=False):
        _iptables("-A", CHAIN, *drop)
    _iptables("-I", CHAIN, "1", *_own_rule(bridge))


def release(bridge: str) -> None:
    """Drop ``bridge``'s rule (``network rm``); the chain stays for the other networks."""
    while _iptables("-D", CHAIN, *_own_rule(bridge), check=False):
        pass
