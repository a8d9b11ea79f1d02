"""``pybuild ps``: list containers."""

from __future__ import annotations

import argparse
import time


def configure(parser: argparse.ArgumentParser) -> None:
    """``-a`` for all containers, ``-q`` for ids only."""
    parser.add_argument("-a", "--all", action="store_true", help="show all containers (default: running only)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print container IDs")
    parser.add_argument("--format", default="table", help="table, json, or a Go template ('{{.Names}} {{.Status}}')")
    parser.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="id=PREFIX, name=PART, status=running|exited|created, label=K[=V] (repeatable; "
                             "every label filter must match)")


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
    from builder.commands import _format
    from builder.commands._common import print_table
    from runner.containers import all_containers

    filters = _format.parse_filters(args.filter, ("id", "name", "status", "label"))
    labels = filters.pop("label", [])
    everything = args.all or "status" in filters
    shown = [c for c in reversed(all_containers(args.root)) if (everything or c.running)
             and all(_format.label_matches(c.config.get("labels"), wanted) for wanted in labels)]
    if filters:
        by_id = {c.id: c for c in shown}
        kept = _format.keep([{"c": c} for c in shown], filters, {
            "id": lambda row, v: row["c"].id.startswith(v),
            "name": lambda row, v: v in row["c"].name,
            "status": lambda row, v: (row["c"].state.get("status") or "created") == v,
        })
        shown = [by_id[row["c"].id] for row in kept]
    if args.format != "table":
        rows = [{"ID": c.short_id, "Image": c.config["image"], "Command": _command(c.config["argv"]),
                 "CreatedAt": c.config.get("created", ""), "RunningFor": _ago(c.config.get("created")),
                 "Status": _status(c.state), "State": c.state.get("status") or "created", "Names": c.name,
                 "Ports": _ports(c),
                 } for c in shown]
        if args.format == "json":
            _format.print_json(rows)
            return 0
        _format.render(args.format, rows, {"ID": "CONTAINER ID", "RunningFor": "CREATED", "Names": "NAMES"})
        return 0
    if args.quiet:
        for c in shown:
            print(c.short_id)
        return 0
    table = [[c.short_id, c.config["image"], _command(c.config["argv"]), _ago(c.config.get("created")),
              _status(c.state), _ports(c), c.name] for c in shown]
    print_table(table, ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"])
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
