"""Network definitions: one CNI configuration list per network under ``$ROOT/networks``.

``networks/<name>.conflist`` is both pybuild's record of the network and what the
plugins read: a ``bridge`` (host-local IPAM, its data dir under ``$ROOT``), then
``portmap`` (published ports).  No ``firewall`` plugin: it costs ~0.2-1 s of
iptables calls per container; the FORWARD rules it would add per address are
instead two static rules per bridge (:mod:`.isolation`).  The default network ``bridge`` is
written on first use; user-defined ones by ``pybuild network create``.  Bridges are
named ``pybr<N>`` and subnets ``10.209.<N>.0/24`` unless given, so that one
``iptables`` wildcard (``pybr+``) covers every pybuild bridge for isolation.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re

from ..containers import _Lock, now
from ..errors import RunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT = "bridge"
BRIDGE_PREFIX = "pybr"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
RESERVED = ("host", "none", "default")


class NoSuchNetwork(RunError):
    """The network named does not exist."""

    exit_code = 1


def networks_dir(root: str) -> str:
    return os.path.join(root, "networks")


def ipam_dir(root: str) -> str:
    """host-local's data dir: one file per allocated address, per network."""
    return os.path.join(networks_dir(root), "ipam")


def _path(root: str, name: str) -> str:
    return os.path.join(networks_dir(root), f"{name}.conflist")


class Lock(_Lock):
    """Exclusive ``networks/.lock``: creating, removing and joining networks."""

    def __init__(self, root: str):
        os.makedirs(networks_dir(root), exist_ok=True)
        self.path = os.path.join(networks_dir(root), ".lock")


def conflist(root: str, name: str, subnet: str, gateway: str, bridge: str, labels: dict[str, str],
             internal: bool = False) -> dict[str, Any]:
    """The CNI configuration list of a network (pybuild's own keys live under ``pybuild``)."""
    ipam = {"type": "host-local", "ranges": [[{"subnet": subnet, "gateway": gateway}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": ipam_dir(root)}
    plugins: list[dict[str, Any]] = [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": not internal, "hairpinMode": True,
         "capabilities": {"ips": True}, "ipam": ipam},
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
    ]
    return {"cniVersion": "1.0.0", "name": name, "plugins": plugins,
            "pybuild": {"subnet": subnet, "gateway": gateway, "bridge": bridge, "labels": labels,
                        "internal": internal, "created": now()}}


def load(root: str, name: str) -> dict[str, Any]:
    """A network's configuration list; the default network is written on first use."""
    try:
        with open(_path(root, name)) as fh:
            return json.load(fh)
    except FileNotFoundError:
        if name == DEFAULT:
            return create(root, DEFAULT, exist_ok=True)
        raise NoSuchNetwork(f"network {name} not found; create it with 'pybuild network create {name}'") from None


def all_networks(root: str) -> list[dict[str, Any]]:
    """Every network, the default one included (written if missing)."""
    load(root, DEFAULT)
    found = []
    for entry in sorted(os.listdir(networks_dir(root))):
        if entry.endswith(".conflist"):
            found.append(load(root, entry[: -len(".conflist")]))
    return found


def _taken(root: str) -> tuple[set[str], list[ipaddress.IPv4Network]]:
    bridges: set[str] = set()
    subnets: list[ipaddress.IPv4Network] = []
    for entry in os.listdir(networks_dir(root)):
        if entry.endswith(".conflist"):
            with open(os.path.join(networks_dir(root), entry)) as fh:
                meta = json.load(fh)["pybuild"]
            bridges.add(meta["bridge"])
            subnets.append(ipaddress.IPv4Network(meta["subnet"]))
    return bridges, subnets


def create(root: str, name: str, subnet: str | None = None, gateway: str | None = None,
           labels: dict[str, str] | None = None, internal: bool = False, exist_ok: bool = False) -> dict[str, Any]:
    """Write a new network (a free ``pybr<N>`` and ``10.209.<N>.0/24`` unless a subnet is given)."""
    if not _NAME.match(name) or name in RESERVED:
        raise RunError(f"invalid network name {name!r}: use letters, digits, '_', '.', '-' (not host, none, default)")
    from base import rootless

    if rootless.active() and name != DEFAULT:
        from .rootless_backend import no_user_networks

        no_user_networks()
    with Lock(root):
        path = _path(root, name)
        if os.path.exists(path):
            if exist_ok:
                with open(path) as fh:
                    return json.load(fh)
            raise RunError(f"network with name {name} already exists")
        bridges, subnets = _taken(root)
        n = 0 if name == DEFAULT else 1
        while f"{BRIDGE_PREFIX}{n}" in bridges or (subnet is None and any(
                s.overlaps(ipaddress.ip_network(f"10.209.{n}.0/24")) for s in subnets)):
            n += 1
        if n > 255:
            raise RunError("no free subnet left in 10.209.0.0/16; give one with --subnet")
        try:
            net = ipaddress.ip_network(subnet or f"10.209.{n}.0/24")
        except ValueError:
            raise RunError(f"invalid subnet {subnet!r}: use CIDR notation such as 10.210.0.0/24") from None
        if net.version != 4 or net.prefixlen > 30:
            raise RunError(f"subnet {net} must be IPv4 with room for hosts (/30 or larger)")
        if any(net.overlaps(s) for s in subnets):
            raise RunError(f"subnet {net} overlaps the subnet of another network")
        gw = gateway or str(next(net.hosts()))
        if ipaddress.ip_address(gw) not in net:
            raise RunError(f"gateway {gw} is not in subnet {net}")
        data = conflist(root, name, str(net), gw, f"{BRIDGE_PREFIX}{n}", labels or {}, internal)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, path)
    return data


def remove(root: str, name: str) -> None:
    """Delete a network's definition (callers check it has no containers)."""
    try:
        os.unlink(_path(root, name))
    except FileNotFoundError:
        raise NoSuchNetwork(f"network {name} not found") from None
