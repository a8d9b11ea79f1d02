"""Rootless mode: a normal user becomes root of a new user namespace for one command.

The user's own uid maps to root inside, and its ``/etc/subuid``/``/etc/subgid``
ranges to uids/gids 1.. (through Debian's setuid ``newuidmap``/``newgidmap``, the
only privileged helpers rootless mode uses).  Everything after that (the store,
snapshots, overlay mounts, chown in RUN steps, the sandbox) runs as it does for
real root: files a RUN step chowns to 1000 are 1000 as this namespace sees them, so
the layer tar records 1000 and a rootless build gives the same digest as a root one.

How: the command forks; the child unshares a user namespace and waits; the parent
writes the child's maps with newuidmap/newgidmap, lets it go on, and waits for it
(forwarding SIGTERM/SIGHUP), exiting with its status.  The child then takes a
private mount namespace, so its mounts never reach the host's.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess

from base.rootless import ENV_FLAG, active

from . import syscalls as sc

__all__ = ["ENV_FLAG", "RootlessError", "active", "enter", "join", "plan", "sub_ranges"]


class RootlessError(Exception):
    """Rootless mode cannot be set up on this host; the message says what to install or configure."""


def sub_ranges(path: str, user: str, uid: int) -> list[tuple[int, int]]:
    """The ``(start, count)`` ranges of ``/etc/subuid``-style ``path`` for ``user`` (by name or number)."""
    ranges = []
    try:
        with open(path) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (user, str(uid)):
            continue
        if parts[1].isdigit() and parts[2].isdigit() and int(parts[2]) > 0:
            ranges.append((int(parts[1]), int(parts[2])))
    return ranges


def _map_args(own: int, ranges: list[tuple[int, int]]) -> list[str]:
    """newuidmap's triples: own id -> 0, then each range from 1 on."""
    args, inside = ["0", str(own), "1"], 1
    for start, count in ranges:
        args += [str(inside), str(start), str(count)]
        inside += count
    return args


def plan() -> tuple[list[str], list[str]]:
    """The newuidmap and newgidmap arguments (after the pid) for this user; RootlessError if impossible."""
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    uids = sub_ranges("/etc/subuid", name, uid)
    gids = sub_ranges("/etc/subgid", name, uid)
    if not uids or not gids:
        raise RootlessError(f"rootless mode needs subordinate ids for {name} in /etc/subuid and /etc/subgid; "
                            f"ask root to run: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}")
    for tool in ("newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            raise RootlessError(f"rootless mode needs {tool}: install the Debian package uidmap")
    return _map_args(uid, uids), _map_args(gid, gids)


def enter() -> int | None:
    """Fork into a new user and mount namespace as its root.

    Returns ``None`` in the child (go on with the command) and the child's exit code
    in the parent (exit with it).  Raises :class:`RootlessError` before forking if the
    host lacks what rootless mode needs.
    """
    uid_args, gid_args = plan()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(go_w)
        _child(ready_w, go_r, parent)
        return None
    os.close(ready_w)
    os.close(go_r)
    failure = ""
    if os.read(ready_r, 1) != b"1":
        failure = os.read(ready_r, 4096).decode(errors="replace") or "cannot create a user namespace"
    else:
        for tool, args in (("newuidmap", uid_args), ("newgidmap", gid_args)):
            done = subprocess.run([tool, str(pid), *args], capture_output=True, text=True)
            if done.returncode != 0:
                failure = f"{tool} failed: {done.stderr.strip() or done.returncode}"
                break
    os.close(ready_r)
    os.write(go_w, b"0" if failure else b"1")
    os.close(go_w)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: os.kill(pid, signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal sends it to the child too
    _, status = os.waitpid(pid, 0)
    if failure:
        raise RootlessError(f"cannot set up the rootless user namespace: {failure}")
    return os.waitstatus_to_exitcode(status) if not os.WIFSIGNALED(status) else 128 + os.WTERMSIG(status)


def _child(ready: int, go: int, parent: int) -> None:
    """In the fork: unshare, wait for the maps, become root, take a private mount namespace."""
    try:
        sc.unshare(sc.CLONE_NEWUSER)
    except OSError as err:
        os.write(ready, b"0" + f"cannot create a user namespace ({err.strerror}); user namespaces may be "
                 "disabled (sysctl user.max_user_namespaces) or forbidden by a seccomp profile (inside a "
                 "container: run it with --security-opt seccomp=unconfined, or build as root there)".encode())
        os._exit(125)
    os.write(ready, b"1")
    os.close(ready)
    if os.read(go, 1) != b"1":
        os._exit(125)
    os.close(go)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.setgroups([])
    # the command is the parent's to the user (its pid is the one a `kill -9` hits): die with
    # it (set after the id changes, which clear it; checked against a parent gone meanwhile)
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(137)
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    os.environ[ENV_FLAG] = "1"


def join(pid: int, start: str | None) -> None:
    """Go into the user and mount namespaces of pybuild process ``pid`` (a container's owner).

    A container's namespaces belong to the user namespace of the command that started
    it; ``exec`` must act from inside that one.  The caller (the user, in the parent
    namespace) owns it, so it may enter it and is root there.  ``start`` guards
    against a reused pid.
    """
    from .procinfo import proc_start_time

    try:
        fds = [os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in ("user", "mnt")]
    except OSError as err:
        raise RootlessError(f"cannot reach the namespaces of the container's pybuild process {pid}: {err.strerror}") from None
    try:
        if start is not None and proc_start_time(pid) != start:
            raise RootlessError("the container's pybuild process is gone")
        sc.setns(fds[0], sc.CLONE_NEWUSER)
        sc.setns(fds[1], sc.CLONE_NEWNS)
    finally:
        for fd in fds:
            os.close(fd)
    os.setgroups([])
    os.environ[ENV_FLAG] = "1"
