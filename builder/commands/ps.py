"""``pybuild ps``: list containers."""

from __future__ import annotations

import argparse
import time


def configure(parser: argparse.ArgumentParser) -> None:
    """``-a`` for all containers, ``-q`` for ids only."""
    parser.add_argument("-a", "--all", action="store_true", help="show all containers (default: running only)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print container IDs")
    parser.add_argument("-f", "--filter", action="append", default=[], metavar="label=K[=V]",
                        help="only containers with this label (and value); repeat to require all")


def human_duration(seconds: float) -> str:
    """Docker's ``HumanDuration``: ``Less than a second``, ``5 seconds``, ``About a minute``, ``3 hours``..."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    minutes, hours, days = seconds / 60, seconds / 3600, seconds / 86400
    steps = [
        (minutes < 1, f"{int(seconds)} seconds"), (int(minutes) == 1, "About a minute"),
        (minutes < 60, f"{int(minutes)} minutes"), (round(hours) == 1, "About an hour"),
        (hours < 48, f"{round(hours)} hours"), (hours < 24 * 14, f"{int(days)} days"),
        (hours < 24 * 90, f"{int(days / 7)} weeks"), (hours < 24 * 365 * 2, f"{int(days / 30)} months"),
    ]
    return next((text for hit, text in steps if hit), f"{int(days / 365)} years")


def _ago(stamp: str | None) -> str:
    from builder.commands._common import parse_time

    when = parse_time(stamp)
    return "N/A" if when is None else human_duration(max(0.0, time.time() - when)) + " ago"


def _status(state: dict) -> str:
    if state.get("status") == "running":
        return "Up " + _ago(state.get("started_at")).removesuffix(" ago")
    if state.get("status") == "restarting":
        return f"Restarting ({state.get('exit_code')}) {_ago(state.get('finished_at'))}"
    if state.get("status") == "exited":
        return f"Exited ({state.get('exit_code')}) {_ago(state.get('finished_at'))}"
    return "Created"


def run(args: argparse.Namespace) -> int:
    """Print the table (or ids), oldest last as docker does."""
    from builder.commands._common import print_table
    from runner.containers import all_containers

    wanted = [_label_filter(f) for f in args.filter]
    shown = [c for c in reversed(all_containers(args.root)) if (args.all or c.running)
             and all(match(c.config.get("labels") or {}) for match in wanted)]
    if args.quiet:
        for c in shown:
            print(c.short_id)
        return 0
    rows = [[c.short_id, c.config["image"], _command(c.config["argv"]), _ago(c.config.get("created")),
             _status(c.state), _ports(c), c.name] for c in shown]
    print_table(rows, ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"])
    return 0


def _ports(container) -> str:
    """Docker's PORTS column: ``127.0.0.1:8080->80/tcp, ...`` while the container runs."""
    if not container.running:
        return ""
    mappings = (container.state.get("network") or {}).get("ports", [])
    return ", ".join(f"{m['hostIP'] or '0.0.0.0'}:{m['hostPort']}->{m['containerPort']}/{m['protocol']}"
                     for m in mappings)


def _command(argv: list[str]) -> str:
    text = " ".join(argv)
    return '"' + (text if len(text) <= 20 else text[:19] + "…") + '"'


def _label_filter(text: str):
    """``label=K`` or ``label=K=V``: a predicate on a container's labels."""
    from registry.errors import PybuildError

    kind, _, spec = text.partition("=")
    if kind != "label" or not spec:
        raise PybuildError(f"invalid filter {text!r}: only label=KEY or label=KEY=VALUE is supported")
    key, eq, value = spec.partition("=")
    return lambda labels: key in labels and (not eq or labels[key] == value)
