"""``pybuild exec``: run a command in a running container."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """Docker's exec flags; everything after CONTAINER is the command."""
    parser.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    parser.add_argument("-u", "--user", help="USER[:GROUP] to run as")
    parser.add_argument("-w", "--workdir", help="working directory inside the container")
    parser.add_argument("container", help="container name or ID")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")


def rootless_owner(args: argparse.Namespace) -> tuple[int, str | None] | None:
    """Rootless: the running container's owning pybuild process, whose namespaces exec enters."""
    from registry.errors import PybuildError
    from runner import containers

    try:
        container = containers.lookup(args.root, args.container)
    except PybuildError:
        return None  # run() says so, from a fresh namespace
    owner = container.state.get("owner_pid")
    if not container.running or not isinstance(owner, int):
        return None
    return owner, container.state.get("owner_start")


def run(args: argparse.Namespace) -> int:
    """Enter the container's namespaces and cgroup, run the command, pass its exit code."""
    from registry.errors import PybuildError
    from runner import containers, lifecycle

    if not args.command:
        raise PybuildError("exec needs a command: pybuild exec CONTAINER COMMAND [ARG...]")
    container = containers.lookup(args.root, args.container)
    return lifecycle.exec_in(container, args.command, args.env, args.user, args.workdir, args.interactive, args.tty)
