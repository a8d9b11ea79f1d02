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
    service.add_argument("--tlsverify", action="store_true",
                         help="tcp only: TLS, and only clients with a certificate signed by --tlscacert")
    service.add_argument("--tlscacert", metavar="FILE", help="CA that signs the clients' certificates")
    service.add_argument("--tlscert", metavar="FILE", help="the service's certificate")
    service.add_argument("--tlskey", metavar="FILE", help="the service's private key")


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from registry.errors import PybuildError
    from service.server import serve

    address = args.socket or "unix://" + os.path.join(args.root, "pybuild.sock")
    tls = None
    if args.tlsverify:
        if not address.startswith("tcp://") or not (args.tlscacert and args.tlscert and args.tlskey):
            raise PybuildError("--tlsverify needs a tcp:// socket and --tlscacert, --tlscert and --tlskey")
        from service.server import tls_context

        tls = tls_context(args.tlscacert, args.tlscert, args.tlskey)
    elif address.startswith("tcp://"):
        host = address[len("tcp://"):].rpartition(":")[0]
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            raise PybuildError(f"tcp socket {address}: without --tlsverify only 127.0.0.1 is served "
                               "(the API gives root on this host)")
    try:
        serve(args.root, address, args.timeout, tls=tls,
              ready=lambda: print(f"pybuild: serving the Engine API on {address}", file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        pass
    return 0
