"""Forwarding policy for pybuild bridges: apart from each other, open to the outside.

The bridge plugin routes between bridges like any host would, and the CNI plugins
have no isolation step (docker adds its own ``DOCKER-ISOLATION`` chains).  One chain
in the ``mangle`` table, which the kernel walks before the ``filter`` FORWARD chain::

    -t mangle -A FORWARD -j PYBUILD-ISOLATION
    PYBUILD-ISOLATION:  -i pybrN -o pybrN -j RETURN   (one per network, inserted first)
                        -i pybr+ -o pybr+ -j DROP

Where FORWARD's policy is DROP (docker sets that on its hosts), containers still get
out and answers come back, through two rules for every pybuild bridge (what the CNI
``firewall`` plugin would add per address, at ~0.2-1 s of iptables calls each time)::

    -t filter -A FORWARD -j PYBUILD-FORWARD
    PYBUILD-FORWARD:  -i pybr+ -j ACCEPT
                      -o pybr+ -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT

Everything is checked with one ``iptables -C`` once it is in place.
"""

from __future__ import annotations

import subprocess

from ..errors import RunError
from .config import BRIDGE_PREFIX

CHAIN = "PYBUILD-ISOLATION"
FORWARD = "PYBUILD-FORWARD"
_ANY = f"{BRIDGE_PREFIX}+"


def _iptables(table: str, *args: str, check: bool = True) -> bool:
    proc = subprocess.run(["iptables", "-w", "-t", table, *args], capture_output=True,
                          env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
    if check and proc.returncode != 0:
        raise RunError(f"iptables -t {table} {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.returncode == 0


def _own_rule(bridge: str) -> tuple[str, ...]:
    return ("-i", bridge, "-o", bridge, "-j", "RETURN")


def _chain(table: str, chain: str, rules: list[tuple[str, ...]]) -> None:
    """``chain`` exists, is jumped to first from FORWARD, and ends with ``rules``."""
    if not _iptables(table, "-n", "-L", chain, check=False):
        _iptables(table, "-N", chain, check=False)  # a concurrent start may have made it meanwhile
    if not _iptables(table, "-C", "FORWARD", "-j", chain, check=False):
        _iptables(table, "-I", "FORWARD", "1", "-j", chain)
    for rule in rules:
        if not _iptables(table, "-C", chain, *rule, check=False):
            _iptables(table, "-A", chain, *rule)


def ensure(bridge: str) -> None:
    """Isolate ``bridge`` from the other pybuild bridges and let it forward (one ``-C`` when done)."""
    if _iptables("mangle", "-C", CHAIN, *_own_rule(bridge), check=False):
        return
    _chain("filter", FORWARD, [("-i", _ANY, "-j", "ACCEPT"),
                               ("-o", _ANY, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "ACCEPT")])
    _chain("mangle", CHAIN, [("-i", _ANY, "-o", _ANY, "-j", "DROP")])
    _iptables("mangle", "-I", CHAIN, "1", *_own_rule(bridge))


def release(bridge: str) -> None:
    """Drop ``bridge``'s rule (``network rm``); the chains stay for the other networks."""
    while _iptables("mangle", "-D", CHAIN, *_own_rule(bridge), check=False):
        pass
