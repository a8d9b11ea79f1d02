"""``pybuild logout REGISTRY``: forget the saved credentials of a registry."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("registry", metavar="REGISTRY", nargs="?", default="docker.io")


def run(args: argparse.Namespace) -> int:
    from registry.remote import credentials
    from registry.remote.login import normalize_registry

    registry = normalize_registry(args.registry)
    if credentials.erase(registry):
        print(f"Removing login credentials for {registry}")
    else:
        print(f"Not logged in to {registry}")
    return 0
