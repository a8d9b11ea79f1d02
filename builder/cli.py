"""The ``pybuild`` entry point.

Subcommands live in ``builder/commands/<name>.py`` and are imported only when
called, so ``pybuild run`` pays for nothing but the run path.  Each module
defines ``configure(parser)`` to add its arguments and ``run(args) -> int``.
Global options: ``--root`` (or ``PYBUILD_ROOT``) and ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import sys

VERSION = "0.1.0"

# name -> (module, one-line help).  Keep sorted by theme, as `pybuild --help` shows it.
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("builder.commands.build", "Build an image from a Dockerfile"),
    "run": ("builder.commands.run", "Run a command in a new container"),
    "ps": ("builder.commands.ps", "List containers"),
    "logs": ("builder.commands.logs", "Show a container's output"),
    "stop": ("builder.commands.stop", "Stop running containers"),
    "kill": ("builder.commands.kill", "Send a signal to running containers"),
    "rm": ("builder.commands.rm", "Remove containers"),
    "exec": ("builder.commands.exec", "Run a command in a running container"),
    "wait": ("builder.commands.wait", "Wait for containers to stop and print their exit codes"),
    "port": ("builder.commands.port", "List a container's published ports"),
    "volume": ("builder.commands.volume", "Manage volumes (create, ls, inspect, rm, prune)"),
    "network": ("builder.commands.network", "Manage networks (create, ls, inspect, rm, connect, disconnect)"),
    "pull": ("builder.commands.pull", "Pull an image from a registry"),
    "push": ("builder.commands.push", "Push an image to a registry"),
    "copy": ("builder.commands.copy", "Copy an image between registries, the store and archives"),
    "key": ("builder.commands.key", "Generate a key pair for signing images"),
    "sign": ("builder.commands.sign", "Sign an image in a registry (cosign's format)"),
    "verify": ("builder.commands.verify", "Verify an image's signatures with a public key"),
    "login": ("builder.commands.login", "Log in to a registry"),
    "logout": ("builder.commands.logout", "Log out from a registry"),
    "import": ("builder.commands.import_", "Create an image from a rootfs tarball or directory"),
    "images": ("builder.commands.images", "List images"),
    "tag": ("builder.commands.tag", "Give an image another name"),
    "rmi": ("builder.commands.rmi", "Remove images"),
    "inspect": ("builder.commands.inspect", "Show an image's details as JSON"),
    "sbom": ("builder.commands.sbom", "Print the SPDX SBOM of an image (store, registry or archive)"),
    "history": ("builder.commands.history", "Show an image's history"),
    "save": ("builder.commands.save", "Save images to a docker-archive or OCI archive"),
    "load": ("builder.commands.load", "Load images from a docker-archive or OCI archive"),
    "info": ("builder.commands.info", "Show the mode (root or rootless), store, storage, network and what is missing"),
    "prune": ("builder.commands.prune", "Remove blobs and snapshots no image uses"),
    "fsck": ("builder.commands.fsck", "Verify every blob and reference in the store"),
    "system": ("builder.commands.system", "Serve the Docker Engine API on a socket ('system service')"),
}


def default_root() -> str:
    """``$PYBUILD_ROOT``, else ``/var/lib/pybuild`` for root, else ``$XDG_DATA_HOME/pybuild``."""
    if os.environ.get("PYBUILD_ROOT"):
        return os.environ["PYBUILD_ROOT"]
    if os.geteuid() == 0:
        return "/var/lib/pybuild"
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data, "pybuild")


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="pybuild",
        description="Daemonless image build, ship and run.",
        epilog=f"commands:\n{lines}\n\nRun 'pybuild COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pybuild {VERSION}")
    parser.add_argument("--root", default=None, help=("state directory (default: $PYBUILD_ROOT, else "
                                                      "/var/lib/pybuild for root, $XDG_DATA_HOME/pybuild for a user)"))
    parser.add_argument("--debug", action="store_true", help="show tracebacks and HTTP/mount details")
    parser.add_argument("command", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


class _Formatter(argparse.HelpFormatter):
    """Help text at ``$COLUMNS`` (default 100) wide.

    argparse builds a formatter for every ``add_argument``; the stock one asks
    ``shutil`` for the terminal size each time, which costs start-up on every command.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=max(40, int(os.environ.get("COLUMNS") or 100) - 2))


def _split_globals(argv: list[str]) -> tuple[str | None, bool, str, list[str]] | None:
    """``(root, debug, command, command args)`` without building the top-level parser.

    ``None`` when argparse must handle the top level (help, version, an unknown option).
    """
    root, debug, i = None, False, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--debug":
            debug = True
        elif arg == "--root" and i + 1 < len(argv):
            root, i = argv[i + 1], i + 1
        elif arg.startswith("--root="):
            root = arg[len("--root="):]
        elif arg.startswith("-"):
            return None
        else:
            return root, debug, arg, argv[i + 1:]
        i += 1
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run one subcommand, turn user errors into one line.

    With ``PYBUILD_IMPORTS_OUT=FILE`` set, the names of every module loaded are written to
    ``FILE`` when the command returns (tests/test_import_budget.py holds each path to a list).
    """
    try:
        return _main(argv)
    finally:
        if os.environ.get("PYBUILD_IMPORTS_OUT"):
            with open(os.environ["PYBUILD_IMPORTS_OUT"], "w") as out:
                out.write("".join(f"{name}\n" for name in sorted(sys.modules)))


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = _split_globals(argv)
    if split is None:
        top = _top_parser().parse_args(argv)
        if top.command is None:
            _top_parser().print_help()
            return 0
        split = (top.root, top.debug, top.command, top.args)
    root, debug, command, command_args = split
    if command not in COMMANDS:
        print(f"pybuild: unknown command {command!r}; run 'pybuild --help' for the list", file=sys.stderr)
        return 2
    module_name, help_ = COMMANDS[command]
    __import__(module_name)  # the builtin: importlib's package is not needed for this
    module = sys.modules[module_name]
    parser = argparse.ArgumentParser(prog=f"pybuild {command}", description=help_, formatter_class=_Formatter)
    module.configure(parser)
    if hasattr(module, "normalize_args"):  # docker's optional-value booleans (--pull=false)
        command_args = module.normalize_args(command_args)
    args = parser.parse_args(command_args)
    args.root = os.path.abspath(root or default_root())  # mounts and helper processes need absolute paths
    args.debug = debug
    if os.geteuid() != 0 and getattr(module, "NEEDS_ROOT", True):
        code = _enter_rootless(module, args)
        if code is not None:
            return code
    if args.debug:
        import logging

        os.environ["PYBUILD_DEBUG"] = "1"
        logging.basicConfig(level=logging.DEBUG, format="pybuild: %(name)s: %(message)s")
    _sweep_networks(args.root)
    return _run(module, args)


def _enter_rootless(module, args: argparse.Namespace) -> int | None:
    """A normal user: go on as root of a new user namespace (see runner/userns.py), or of
    the one a running container belongs to (a module's ``rootless_owner(args)``, for exec).

    None in the namespace (run the command there); the command's exit code in the
    parent, which only waited for it.
    """
    from runner import userns

    try:
        owner = module.rootless_owner(args) if hasattr(module, "rootless_owner") else None
        if owner is not None:
            userns.join(*owner)
            return None
        return userns.enter()
    except userns.RootlessError as err:
        if args.debug:
            raise
        print(f"pybuild: error: {err}", file=sys.stderr)
        return 125


def _sweep_networks(root: str) -> None:
    """Undo the networks of containers whose pybuild was killed (one listdir when there are none)."""
    if os.path.isdir(os.path.join(root, "netns")):
        from runner.network import sweep

        try:
            sweep(root)
        except OSError as err:  # e.g. not root: the command itself may still work
            print(f"pybuild: warning: cannot clean up networks of dead containers: {err}", file=sys.stderr)


def _run(module, args: argparse.Namespace) -> int:
    from registry.errors import PybuildError

    try:
        return int(module.run(args) or 0)
    except PybuildError as err:
        if args.debug:
            raise
        print(f"pybuild: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except OSError as err:
        if args.debug:
            raise
        where = f": {err.filename}" if err.filename else ""
        print(f"pybuild: error: {err.strerror or err}{where} (run with --debug for details)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pybuild: interrupted", file=sys.stderr)
        return 130


def _quiet_stdout() -> None:
    """After the reader of our output went away, let the interpreter exit without another EPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
