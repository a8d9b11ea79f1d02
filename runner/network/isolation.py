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

``portmap`` sets ``route_localnet`` on a bridge so that a port published on
127.0.0.1 answers; that also lets a container with NET_RAW or NET_ADMIN send
packets to the *host's* 127.0.0.1 services through its gateway (CVE-2020-8558 in
kube-proxy).  Such packets are dropped before routing::

    -t mangle -A PREROUTING -j PYBUILD-LOCALNET
    PYBUILD-LOCALNET:  -i pybr+ -d 127.0.0.0/8 -j DROP

(replies to a client on 127.0.0.1 come back addressed to the bridge: portmap
masquerades that traffic.)  Everything is checked with one ``iptables -C`` once in place.
"""

from __future__ import annotations

import subprocess

from ..errors import RunError
from .config import BRIDGE_PREFIX

CHAIN = "PYBUILD-ISOLATION"
FORWARD = "PYBUILD-FORWARD"
LOCALNET = "PYBUILD-LOCALNET"
_ANY = f"{BRIDGE_PREFIX}+"


def _iptables(table: str, *args: str, check: bool = True) -> bool:
    proc = subprocess.run(["iptables", "-w", "-t", table, *args], capture_output=True,
                          env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
    if check and proc.returncode != 0:
        raise RunError(f"iptables -t {table} {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.returncode == 0


def _own_rule(bridge: str) -> tuple[str, ...]:
    return ("-i", bridge, "-o", bridge, "-j", "RETURN")


def _chain(table: str, chain: str, rules: list[tuple[str, ...]], hook: str = "FORWARD") -> None:
    """``chain`` exists, is jumped to first from ``hook``, and ends with ``rules``."""
    if not _iptables(table, "-n", "-L", chain, check=False):
        _iptables(table, "-N", chain, check=False)  # a concurrent start may have made it meanwhile
    if not _iptables(table, "-C", hook, "-j", chain, check=False):
        _iptables(table, "-I", hook, "1", "-j", chain)
    for rule in rules:
        if not _iptables(table, "-C", chain, *rule, check=False):
            _iptables(table, "-A", chain, *rule)


def ensure(bridge: str) -> None:
    """Isolate ``bridge`` from the other pybuild bridges and let it forward (one ``-C`` when done)."""
    if _iptables("mangle", "-C", CHAIN, *_own_rule(bridge), check=False):
        return
    _chain("filter", FORWARD, [("-i", _ANY, "-j", "ACCEPT"),
                               ("-o", _ANY, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "ACCEPT")])
    _chain("mangle", LOCALNET, [("-i", _ANY, "-d", "127.0.0.0/8", "-j", "DROP")], hook="PREROUTING")
    _chain("mangle", CHAIN, [("-i", _ANY, "-o", _ANY, "-j", "DROP")])
    _iptables("mangle", "-I", CHAIN, "1", *_own_rule(bridge))


def release(bridge: str) -> None:
    """Drop ``bridge``'s rule (``network rm``); the chains stay for the other networks."""
    while _iptables("mangle", "-D", CHAIN, *_own_rule(bridge), check=False):
        pass
