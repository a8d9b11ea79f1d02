"""``pybuild port CONTAINER [PORT[/PROTO]]``: the published ports of a container."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container", help="container name or ID")
    parser.add_argument("port", nargs="?", help="only this container port (e.g. 80 or 80/tcp)")


def run(args: argparse.Namespace) -> int:
    """Print ``80/tcp -> 127.0.0.1:18080`` lines (docker's format); only the host side for PORT."""
    from registry.errors import PybuildError
    from runner import containers
    from runner.network import ports

    container = containers.lookup(args.root, args.container)
    mappings = (container.state.get("network") or {}).get("ports", []) if container.running else []
    if args.port:
        number, _, proto = args.port.partition("/")
        chosen = [m for m in mappings if str(m["containerPort"]) == number and m["protocol"] == (proto or "tcp")]
        if not chosen:
            raise PybuildError(f"no public port '{number}/{proto or 'tcp'}' published for {container.name}")
        for m in chosen:
            print(f"{m['hostIP'] or '0.0.0.0'}:{m['hostPort']}")
        return 0
    for line in ports.describe(mappings):
        print(line)
    return 0
