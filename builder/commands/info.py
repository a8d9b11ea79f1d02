"""``pybuild info``: the mode, store, storage driver, network, cgroups and what is missing."""

from __future__ import annotations

import argparse

NEEDS_ROOT = False  # reports on the host as the caller is: no user namespace is entered


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")


def run(args: argparse.Namespace) -> int:
    """Print one ``Label: value`` line per fact (or a JSON object)."""
    from runner import hostinfo

    facts = hostinfo.facts(args.root)
    if args.format == "json":
        import json

        print(json.dumps(dict(facts), indent=2))
    else:
        for label, value in facts:
            print(f"{label}: {value}")
    return 0
