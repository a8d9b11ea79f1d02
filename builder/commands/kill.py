"""``pybuild kill``: send a signal to running containers."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """``-s`` the signal (default SIGKILL)."""
    parser.add_argument("-s", "--signal", default="SIGKILL", help="signal to send (default SIGKILL)")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER", help="container names or IDs")


def run(args: argparse.Namespace) -> int:
    """Signal each container's pid 1 (SIGKILL: the whole cgroup)."""
    import signal

    from runner import containers, imageconfig, lifecycle

    sig = imageconfig.parse_signal(args.signal)
    for ref in args.containers:
        container = containers.lookup(args.root, ref)
        lifecycle.signal_container(container, sig)
        if sig == signal.SIGKILL:
            container.cgroup().kill_all()
        print(ref)
    return 0
