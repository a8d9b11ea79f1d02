"""``pybuild login REGISTRY``: check credentials against a registry and save them."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("registry", metavar="REGISTRY", nargs="?", default="docker.io")
    parser.add_argument("-u", "--username")
    parser.add_argument("-p", "--password", help="the password (prefer --password-stdin: argv is visible to others)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP and skip TLS verification")


def run(args: argparse.Namespace) -> int:
    import getpass

    from registry.errors import PybuildError
    from registry.remote.login import login, normalize_registry

    registry = normalize_registry(args.registry)
    username = args.username
    password = args.password
    if args.password_stdin:
        if password:
            raise PybuildError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise PybuildError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty():
            raise PybuildError("no username given; use -u USER and --password-stdin")
        username = input("Username: ")
    if not password:
        if not sys.stdin.isatty():
            raise PybuildError("no password given; use --password-stdin")
        password = getpass.getpass("Password: ")
    if args.password and not args.password_stdin:
        print("pybuild: warning: --password on the command line is visible to other users; use --password-stdin",
              file=sys.stderr)
    where = login(registry, username, password, insecure=args.insecure)
    print(f"Login Succeeded (credentials saved in {where})")
    return 0
