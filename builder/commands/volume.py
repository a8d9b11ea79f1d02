"""``pybuild volume create|ls|inspect|rm|prune``: named volumes under ``$ROOT/volumes``."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    """One sub-command per action, with docker's names and flags."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a volume")
    create.add_argument("--label", action="append", default=[], metavar="K=V", help="set a label")
    create.add_argument("-d", "--driver", default="local", help="only local")
    create.add_argument("name", nargs="?", help="volume name (default: a random one)")
    ls = sub.add_parser("ls", help="list volumes")
    ls.add_argument("-q", "--quiet", action="store_true", help="only print names")
    inspect = sub.add_parser("inspect", help="show volumes as JSON")
    inspect.add_argument("names", nargs="+", metavar="VOLUME")
    rm = sub.add_parser("rm", help="remove volumes")
    rm.add_argument("-f", "--force", action="store_true", help="remove even if a container uses it")
    rm.add_argument("names", nargs="+", metavar="VOLUME")
    prune = sub.add_parser("prune", help="remove volumes no container uses")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (pybuild never asks)")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action."""
    from runner import volumes

    if args.action == "create":
        if args.driver != "local":
            from registry.errors import PybuildError

            raise PybuildError(f"volume driver {args.driver!r} is not supported: use local")
        labels = dict(item.partition("=")[::2] for item in args.label)
        print(volumes.create(args.root, args.name, labels)["Name"])
    elif args.action == "ls":
        found = volumes.all_volumes(args.root)
        if args.quiet:
            for v in found:
                print(v["Name"])
        else:
            from builder.commands._common import print_table

            print_table([[v["Driver"], v["Name"]] for v in found], ["DRIVER", "VOLUME NAME"])
    elif args.action == "inspect":
        print(json.dumps([volumes.inspect(args.root, name) for name in args.names], indent=4))
    elif args.action == "rm":
        for name in args.names:
            volumes.remove(args.root, name, args.force)
            print(name)
    else:
        removed = [v["Name"] for v in volumes.all_volumes(args.root) if not volumes.users(args.root, v["Name"])]
        for name in removed:
            volumes.remove(args.root, name)
        print("Deleted Volumes:\n" + "".join(f"{n}\n" for n in removed) if removed else "", end="")
    return 0
