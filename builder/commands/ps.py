"""``pybuild ps``: list containers."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """``-a`` for all containers, ``-q`` for ids only."""
    parser.add_argument("-a", "--all", action="store_true", help="show all containers (default: running only)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print container IDs")


def _status(state: dict) -> str:
    from builder.commands._common import time_ago

    if state.get("status") == "running":
        return "Up " + time_ago(state.get("started_at")).removesuffix(" ago")
    if state.get("status") == "exited":
        return f"Exited ({state.get('exit_code')}) {time_ago(state.get('finished_at'))}"
    return "Created"


def run(args: argparse.Namespace) -> int:
    """Print the table (or ids), oldest last as docker does."""
    from builder.commands._common import print_table, time_ago
    from runner.containers import all_containers

    shown = [c for c in reversed(all_containers(args.root)) if args.all or c.running]
    if args.quiet:
        for c in shown:
            print(c.short_id)
        return 0
    rows = [[c.short_id, c.config["image"], _command(c.config["argv"]), time_ago(c.config.get("created")),
             _status(c.state), c.name] for c in shown]
    print_table(rows, ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"])
    return 0


def _command(argv: list[str]) -> str:
    text = " ".join(argv)
    return '"' + (text if len(text) <= 20 else text[:19] + "…") + '"'
