"""``pybuild system service``: the Docker Engine API over a socket (see docs/service.md)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    service = sub.add_parser("service", help="serve the Docker Engine API (1.41) for docker, docker-py, compose")
    service.add_argument("--socket", default=None,
                         help="unix:///PATH (default: unix://$ROOT/pybuild.sock) or tcp://127.0.0.1:PORT")
    service.add_argument("--timeout", type=float, default=None,
                         help="exit after this many seconds without a request (default: never)")


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from registry.errors import PybuildError
    from service.server import serve

    address = args.socket or "unix://" + os.path.join(args.root, "pybuild.sock")
    if address.startswith("tcp://"):
        host = address[len("tcp://"):].rpartition(":")[0]
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            raise PybuildError(f"tcp socket {address}: only 127.0.0.1 is served (the API gives root on this host)")
    try:
        serve(args.root, address, args.timeout,
              ready=lambda: print(f"pybuild: serving the Engine API on {address}", file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        pass
    return 0
