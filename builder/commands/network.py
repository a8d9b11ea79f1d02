"""``pybuild network create|ls|inspect|rm|connect|disconnect``: bridge networks (CNI)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os

from base.removal import remove_tree


def configure(parser: argparse.ArgumentParser) -> None:
    """One sub-command per action, with docker's names and flags."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a network")
    create.add_argument("--subnet", help="IPv4 subnet in CIDR form (default: a free 10.209.N.0/24)")
    create.add_argument("--gateway", help="gateway address (default: the subnet's first)")
    create.add_argument("-d", "--driver", default="bridge", help="only bridge")
    create.add_argument("--internal", action="store_true", help="no outbound NAT")
    create.add_argument("--label", action="append", default=[], metavar="K=V", help="set a label")
    create.add_argument("name")
    ls = sub.add_parser("ls", help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="only print IDs")
    inspect = sub.add_parser("inspect", help="show networks as JSON")
    inspect.add_argument("names", nargs="+", metavar="NETWORK")
    rm = sub.add_parser("rm", help="remove networks")
    rm.add_argument("names", nargs="+", metavar="NETWORK")
    connect = sub.add_parser("connect", help="connect a running container to a network")
    connect.add_argument("--alias", action="append", default=[], help="another name on this network")
    connect.add_argument("--ip", help="IPv4 address on this network")
    connect.add_argument("network")
    connect.add_argument("container")
    disconnect = sub.add_parser("disconnect", help="disconnect a running container from a network")
    disconnect.add_argument("network")
    disconnect.add_argument("container")


def network_id(conflist: dict) -> str:
    """A stable 64-hex id (name and creation time), as docker shows network ids."""
    return hashlib.sha256(f"{conflist['name']}\0{conflist['pybuild']['created']}".encode()).hexdigest()


def describe(root: str, conflist: dict) -> dict:
    """A network as ``docker network inspect`` shows it."""
    from runner.network.cni_backend import users

    meta = conflist["pybuild"]
    members = {}
    for cid in users(root, conflist["name"]):
        summary = _container_summary(root, cid, conflist["name"])
        if summary is not None:
            members[cid] = summary
    return {
        "Name": conflist["name"], "Id": network_id(conflist), "Created": meta["created"], "Scope": "local",
        "Driver": "bridge", "EnableIPv6": False,
        "IPAM": {"Driver": "host-local", "Config": [{"Subnet": meta["subnet"], "Gateway": meta["gateway"]}]},
        "Internal": meta["internal"], "Containers": members,
        "Options": {"com.docker.network.bridge.name": meta["bridge"]}, "Labels": meta["labels"],
    }


def _container_summary(root: str, cid: str, name: str) -> dict | None:
    from runner import containers

    try:
        container = containers.lookup(root, cid)
    except containers.NoSuchContainer:
        return None
    net = ((container.state.get("network") or {}).get("networks") or {}).get(name)
    if net is None:
        return None
    return {"Name": container.name, "MacAddress": net["mac"], "IPv4Address": f"{net['ip']}/{net['prefix']}",
            "Aliases": net["aliases"]}


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action."""
    return globals()[f"_{args.action}"](args)


def _create(args: argparse.Namespace) -> int:
    from registry.errors import PybuildError
    from runner.network import config

    if args.driver != "bridge":
        raise PybuildError(f"network driver {args.driver!r} is not supported: use bridge")
    labels = dict(item.partition("=")[::2] for item in args.label)
    conflist = config.create(args.root, args.name, args.subnet, args.gateway, labels, args.internal)
    print(network_id(conflist))
    return 0


def _ls(args: argparse.Namespace) -> int:
    from builder.commands._common import print_table
    from runner.network import config

    nets = config.all_networks(args.root)
    if args.quiet:
        for net in nets:
            print(network_id(net)[:12])
        return 0
    print_table([[network_id(n)[:12], n["name"], "bridge", "local"] for n in nets],
                ["NETWORK ID", "NAME", "DRIVER", "SCOPE"])
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from runner.network import config

    print(json.dumps([describe(args.root, config.load(args.root, name)) for name in args.names], indent=4))
    return 0


def _rm(args: argparse.Namespace) -> int:
    for name in args.names:
        remove_network(args.root, name)
        print(name)
    return 0


def remove_network(root: str, name: str) -> None:
    """Delete a user-defined network without members: its bridge, isolation rule, IPAM data."""
    from registry.errors import PybuildError
    from runner.network import config, isolation
    from runner.network.cni_backend import users

    if name == config.DEFAULT:
        raise PybuildError(f"{name} is a pre-defined network and cannot be removed")
    conflist = config.load(root, name)
    if users(root, name):
        raise PybuildError(f"network {name} has active endpoints; stop or disconnect its containers first")
    bridge = conflist["pybuild"]["bridge"]
    isolation.release(bridge)
    _delete_link(bridge)
    config.remove(root, name)
    remove_tree(os.path.join(config.ipam_dir(root), name), ignore_errors=True)


def _delete_link(bridge: str) -> None:
    """The bridge interface goes with its network (the bridge plugin never deletes it)."""
    import subprocess

    subprocess.run(["ip", "link", "delete", bridge, "type", "bridge"], capture_output=True)


def _connect(args: argparse.Namespace) -> int:
    from runner import containers
    from runner.network import config
    from runner.network.cni_backend import connect

    config.load(args.root, args.network)
    container = containers.lookup(args.root, args.container)
    connect(container, {"name": args.network, "aliases": args.alias, "ip": args.ip})
    return 0


def _disconnect(args: argparse.Namespace) -> int:
    from runner import containers
    from runner.network.cni_backend import disconnect

    disconnect(containers.lookup(args.root, args.container), args.network)
    return 0
