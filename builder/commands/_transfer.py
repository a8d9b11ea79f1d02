"""Options and progress shared by the registry commands (pull, push, copy)."""

from __future__ import annotations

import argparse


def add_transfer_options(parser: argparse.ArgumentParser, what: str, platform: bool = True,
                         quiet_help: str = "print only the digest") -> None:
    """``--platform``, ``--insecure``, ``-q`` and ``-j`` with help texts for ``what`` is moved."""
    if platform:
        parser.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform image "
                                               "(default: the host's)")
    parser.add_argument("--insecure", action="store_true", help="allow plain HTTP and skip TLS verification")
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    parser.add_argument("-j", "--jobs", type=int, default=None, help=f"{what} at once (default 4, or $PYBUILD_JOBS)")


def add_policy_option(parser: argparse.ArgumentParser) -> None:
    """``--policy FILE``: containers' policy.json that decides which images may be pulled."""
    parser.add_argument("--policy", metavar="FILE", default=None,
                        help="signature verification policy (containers' policy.json; default: $PYBUILD_POLICY, "
                             "~/.config/containers/policy.json, /etc/containers/policy.json)")
