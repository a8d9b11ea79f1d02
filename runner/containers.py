"""Container records under ``$PYBUILD_ROOT/containers/<id>/``.

Each container directory holds ``config.json`` (what to run, written once),
``state.json`` (status, pids, exit code; replaced atomically), ``log.jsonl`` (its
output), ``upper/``+``work/`` (its writable layer) and ``state/`` (the sandbox's
generated files).  A record whose owner (the foreground ``pybuild run`` or the
detached monitor) died without writing an exit code is found by :func:`refresh`,
which any command listing or looking up containers calls: the leftovers are killed
and the container is marked exited (code 255), or removed if it was ``--rm``.
"""

from __future__ import annotations

import fcntl
import json
import os
import time

from base.removal import remove_tree
from registry.errors import PybuildError

from . import cgroups
from .errors import RunError
from .procinfo import alive, proc_start_time

TYPE_CHECKING = False  # typing itself is not imported on the run path
if TYPE_CHECKING:
    from typing import Any

CRASHED_EXIT_CODE = 255


class NoSuchContainer(PybuildError):
    """No container by that name or id."""


def containers_dir(root: str) -> str:
    """``$ROOT/containers``."""
    return os.path.join(root, "containers")


def now() -> str:
    """UTC timestamp, RFC 3339 with nanosecond digits as docker prints them."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


class Container:
    """One container record."""

    def __init__(self, root: str, cid: str, config: dict[str, Any], state: dict[str, Any]):
        self.root = root
        self.id = cid
        self.config = config
        self.state = state

    @property
    def dir(self) -> str:
        return os.path.join(containers_dir(self.root), self.id)

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state.get("status") == "running"

    def path(self, name: str) -> str:
        """A file or dir inside the container's directory."""
        return os.path.join(self.dir, name)

    def save_state(self, **changes: Any) -> None:
        """Update ``state.json`` atomically."""
        self.state.update(changes)
        tmp = self.path(f"state.json.{os.getpid()}")
        with open(tmp, "w") as fh:
            json.dump(self.state, fh)
        os.replace(tmp, self.path("state.json"))

    def reload(self) -> None:
        """Re-read ``state.json`` (another process may have changed it, or removed the container)."""
        try:
            with open(self.path("state.json")) as fh:
                self.state = json.load(fh)
        except FileNotFoundError:
            self.state = {"status": "removed", "exit_code": self.state.get("exit_code")}

    def cgroup(self) -> cgroups.Cgroup:
        """The container's cgroup (which may no longer exist)."""
        cg = cgroups.open_cgroup(self.id, self.config.get("cgroup_version"))
        if isinstance(cg, cgroups.CgroupNone):
            cg.pid1 = (self.state.get("pid"), self.state.get("pid_start"))
        return cg


class _Lock:
    """Exclusive lock on ``containers/.lock`` (name uniqueness); no contextlib on the run path."""

    def __init__(self, root: str):
        os.makedirs(containers_dir(root), exist_ok=True)
        self.path = os.path.join(containers_dir(root), ".lock")

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "swift", "wise")
_NOUNS = ("curie", "darwin", "euler", "gauss", "hopper", "lovelace", "noether", "pascal", "turing", "volta")


def new_id() -> str:
    """A new container id: 64 hex digits."""
    return os.urandom(32).hex()


def create(root: str, cid: str, config: dict[str, Any]) -> Container:
    """Make a new container record (dir, config.json, state.json); names are unique."""
    with _Lock(root):
        taken = {c.name for c in _load_all(root)}
        name = config.get("name")
        if name and name in taken:
            raise RunError(f'the container name "{name}" is already in use; remove that container or choose another name')
        while not name or name in taken:
            a, b, n = os.urandom(3)
            name = f"{_ADJECTIVES[a % len(_ADJECTIVES)]}_{_NOUNS[b % len(_NOUNS)]}"
            if name in taken:
                name += f"_{n}"
        config = dict(config, id=cid, name=name, created=now())
        cdir = os.path.join(containers_dir(root), cid)
        os.makedirs(cdir, mode=0o700)
        for sub in ("upper", "work", "state"):
            os.mkdir(os.path.join(cdir, sub))
        with open(os.path.join(cdir, "config.json"), "w") as fh:
            json.dump(config, fh)
        container = Container(root, cid, config, {})
        me = os.getpid()
        container.save_state(status="created", owner_pid=me, owner_start=proc_start_time(me))
    return container


def _load(root: str, cid: str) -> Container | None:
    cdir = os.path.join(containers_dir(root), cid)
    try:
        with open(os.path.join(cdir, "config.json")) as fh:
            config = json.load(fh)
        with open(os.path.join(cdir, "state.json")) as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return None
    return Container(root, cid, config, state)


def _load_all(root: str) -> list[Container]:
    try:
        names = os.listdir(containers_dir(root))
    except FileNotFoundError:
        return []
    return [c for c in (_load(root, n) for n in names if not n.startswith(".")) if c is not None]


def refresh(container: Container) -> Container | None:
    """Clean up after a dead owner; None if the record is gone (or was removed)."""
    state = container.state
    stale_created = state.get("status") == "created" and not alive(state.get("owner_pid"), state.get("owner_start"))
    crashed = state.get("status") in ("running", "restarting") and not alive(state.get("owner_pid"),
                                                                             state.get("owner_start"))
    if not (crashed or stale_created):
        return container
    container.cgroup().remove()  # kills whatever is left
    from . import network

    if network.needs_setup(container.config.get("network", "host")):
        network.backend().teardown(container.root, container.id)
    if container.config.get("rm"):
        remove(container)
        return None
    container.save_state(status="exited", exit_code=CRASHED_EXIT_CODE, finished_at=now(),
                         error="pybuild exited before the container did")
    return container


def all_containers(root: str) -> list[Container]:
    """Every container, oldest first, after crash recovery."""
    try:
        _sweep_removed(root, os.listdir(containers_dir(root)))
    except FileNotFoundError:
        pass
    found = [refresh(c) for c in _load_all(root)]
    return sorted((c for c in found if c is not None), key=lambda c: c.config.get("created", ""))


def lookup(root: str, ref: str) -> Container:
    """A container by name, full id or unique id prefix."""
    matches = []
    for c in _load_all(root):
        if ref in (c.name, c.id):
            matches = [c]
            break
        if len(ref) >= 1 and c.id.startswith(ref):
            matches.append(c)
    if len(matches) > 1:
        raise PybuildError(f"multiple containers match the id prefix {ref!r}; give more of the id")
    found = refresh(matches[0]) if matches else None
    if found is None:
        raise NoSuchContainer(f"no such container: {ref}")
    return found


def remove(container: Container, background: bool = False) -> None:
    """Delete the container's directory (its writable layer and logs).

    The record vanishes at once (a rename); with ``background`` the files are
    deleted by a forked child so that ``run --rm`` returns without waiting for it.
    """
    doomed = os.path.join(containers_dir(container.root), f".removing-{container.id}")
    try:
        os.rename(container.dir, doomed)
    except FileNotFoundError:
        return
    if background and os.fork() != 0:
        return
    try:
        if background:
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
        _rmtree(doomed)
    finally:
        if background:
            os._exit(0)


def _rmtree(path: str) -> None:

    remove_tree(path, ignore_errors=True)


def _sweep_removed(root: str, names: list[str]) -> None:
    """Finish removals a killed process left behind."""
    for name in names:
        if name.startswith(".removing-"):
            _rmtree(os.path.join(containers_dir(root), name))


def images_in_use(root: str) -> set[str]:
    """Image IDs (config digests) of every container, running or not: ``rmi`` must keep them."""
    return {c.config["image_id"] for c in _load_all(root) if c.config.get("image_id")}
