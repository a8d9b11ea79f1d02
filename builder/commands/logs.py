"""``pybuild logs``: show a container's output (stdout and stderr kept apart)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    """``-f`` follows the log until the container exits."""
    parser.add_argument("-f", "--follow", action="store_true", help="follow log output")
    parser.add_argument("container", help="container name or ID")


def run(args: argparse.Namespace) -> int:
    """Copy the logged output to our stdout/stderr."""
    from runner import containers, stdio

    container = containers.lookup(args.root, args.container)

    def running() -> bool:
        container.reload()
        return containers.refresh(container) is not None and container.running

    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    for stream, data in stdio.read_log(container.path(stdio.LOG_FILE), args.follow, running):
        out[stream].write(data)
        out[stream].flush()
    return 0
