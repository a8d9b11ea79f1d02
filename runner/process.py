"""The last steps inside the container: identity, privileges, cwd, PATH lookup, exec.

Shared by a new container's first process and by ``pybuild exec``.  Failures are
:class:`SetupError` with docker's exit codes: 126 (cannot invoke) and 127 (not found).
"""

from __future__ import annotations

import _signal as signal  # the C module: `signal` would import enum (~3 ms per shim)
import os

from . import security, users
from .spec import DEFAULT_PATH, SandboxSpec


class SetupError(Exception):
    """The container process could not be started; ``exit_code`` as docker's."""

    def __init__(self, message: str, exit_code: int = 125):
        super().__init__(message)
        self.exit_code = exit_code


def _env_dict(env: list[str]) -> dict[str, str]:
    out = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


INIT_NAME = "/sbin/docker-init"  # what pid 1 is called under --init, as docker calls its tini


def exec_command(spec: SandboxSpec, init: int | None = None) -> None:
    """Resolve the user, cut privileges, chdir and exec ``spec.argv``; never returns.

    ``init``: a descriptor of tini (``--init``), exec'd instead with the same
    privileges, seccomp filter and environment, to run ``spec.argv`` as its child.
    """
    try:
        ident = users.resolve(spec.user)
        ident.groups += [g for g in users.group_ids(spec.group_add) if g not in ident.groups]
        caps = security.capability_set(spec.cap_add, spec.cap_drop)
    except (users.UserError, security.SecurityError) as err:
        raise SetupError(str(err), 125) from None
    env = _env_dict(spec.env)
    env.setdefault("HOME", ident.home)
    if not os.path.isdir(spec.cwd):  # exec's -w (a new container's was made before pivot_root)
        os.makedirs(spec.cwd, 0o755, exist_ok=True)
    security.drop_bounding(caps)
    if spec.no_new_privs:
        security.set_no_new_privs()
    if spec.seccomp and not security.apply_seccomp(caps, spec.no_new_privs):
        raise SetupError(security.SECCOMP_MISSING, 125)  # never run unfiltered unless asked to
    security.switch_user(ident.uid, ident.gid, ident.groups, caps)
    try:
        os.chdir(spec.cwd)
    except OSError as err:
        raise SetupError(f"chdir to cwd ({spec.cwd!r}) set in config.json failed: {(err.strerror or str(err)).lower()}", 126) from None
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; exec keeps ignores
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if init is not None:
        try:
            os.execve(init, [INIT_NAME, "--", *spec.argv], env)
        except OSError as err:
            raise SetupError(f"exec: {INIT_NAME}: {(err.strerror or str(err)).lower()}", 126) from None
    execvpe(spec.argv, env)


def execvpe(argv: list[str], env: dict[str, str]) -> None:
    """Exec with the PATH search done in the container, as docker words its failures."""
    if not argv:
        raise SetupError("no command specified", 125)
    name = argv[0]
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", DEFAULT_PATH).split(":")]
    denied = False
    for path in candidates:
        try:
            os.execve(path, argv, env)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            denied = True
            continue
        except OSError as err:
            raise SetupError(f'exec: "{name}": {(err.strerror or str(err)).lower()}', 126) from None
    if denied:
        raise SetupError(f'exec: "{name}": permission denied', 126)
    if "/" in name:
        raise SetupError(f'exec: "{name}": stat {name}: no such file or directory', 127)
    raise SetupError(f'exec: "{name}": executable file not found in $PATH', 127)
