"""Resource limits through cgroups: one interface, a v2 and a v1 backend.

:func:`detect` picks v2 when ``/sys/fs/cgroup`` is a cgroup2 mount with
controllers, else v1 (separate ``memory``, ``cpu``, ``pids`` and ``freezer``
hierarchies; this development host).  Containers live in ``pybuild/<name>``.

    cg = create("abc123", memory=64 << 20, cpus=0.5, pids=100)
    spec.cgroup_procs = cg.procs_files()   # the container joins before it starts
    ...; cg.oom_killed(); cg.stats(); cg.kill_all(); cg.remove()
"""

from __future__ import annotations

import os
import signal
import time

from base import rootless

from .procinfo import alive
from .textfile import read_text, write_text

CGROUP_ROOT = "/sys/fs/cgroup"
PARENT = "pybuild"
CFS_PERIOD = 100_000
_V1_CONTROLLERS = ("memory", "cpu", "pids", "freezer")


class CgroupError(Exception):
    """A limit cannot be applied on this host."""




def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _number(text: str) -> int:
    """A cgroup file's number; -1 for ``max``, unreadable, or v1's "unlimited" (near 2**63)."""
    value = text.strip()
    if not value.isdigit():
        return -1
    return -1 if int(value) >= 1 << 62 else int(value)


ROOTLESS_NO_LIMITS = ("rootless pybuild has no cgroup to apply {flag} in: on this host ({version}) no cgroup is "
                      "delegated to the user; run without {flag}, or as root")


def detect(root: str = CGROUP_ROOT) -> str:
    """``"v2"`` for a unified hierarchy with controllers at ``root``, else ``"v1"``;
    ``"none"`` in rootless mode, where the user owns no cgroup to put containers in."""
    if rootless.active():
        return "none"
    return host_version(root)


def host_version(root: str = CGROUP_ROOT) -> str:
    """The host's cgroup version, ``"v2"`` or ``"v1"``."""
    if read_text(os.path.join(root, "cgroup.controllers")).strip():
        return "v2"
    return "v1"


class Cgroup:
    """A container's cgroup: join it, read its limits and stats, kill and remove it."""

    version = ""

    def __init__(self, name: str):
        self.name = name

    def dirs(self) -> dict[str, str]:
        """Controller name -> directory (v2: one entry, key ``""``)."""
        raise NotImplementedError

    def make(self, memory: int | None, memory_swap: int | None, cpus: float | None, pids: int | None) -> None:
        """Create the cgroup and write the limits (None: no limit)."""
        raise NotImplementedError

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes ``0`` to, to join."""
        return [os.path.join(d, "cgroup.procs") for d in self.dirs().values()]

    def add(self, pid: int) -> None:
        """Move ``pid`` into this cgroup."""
        for path in self.procs_files():
            write_text(path, str(pid))

    def pids(self) -> set[int]:
        """Every process in the cgroup."""
        out: set[int] = set()
        for path in self.procs_files():
            out |= {int(p) for p in read_text(path).split()}  # "" once its owner removed it
        return out

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Remove the cgroup dirs (killing what is left); missing dirs are fine."""
        if self.pids():
            self.kill_all()
        for path in self.dirs().values():
            for attempt in range(100):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last tasks exit
                    time.sleep(0.01 if attempt < 50 else 0.05)

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a process of this cgroup."""
        raise NotImplementedError

    # stat name -> (controller, file); filled in by each backend
    _STAT_FILES: dict[str, tuple[str, str]] = {}

    def stats(self) -> dict[str, int]:
        """``memory_usage``, ``memory_limit``, ``pids_current``, ``pids_limit`` (bytes/counts, -1: none)."""
        dirs = self.dirs()
        return {key: _number(read_text(os.path.join(dirs.get(ctrl, "/nonexistent"), name)))
                for key, (ctrl, name) in self._STAT_FILES.items()}


class CgroupV1(Cgroup):
    """cgroup v1: one directory per controller hierarchy."""

    version = "v1"
    _STAT_FILES = {"memory_usage": ("memory", "memory.usage_in_bytes"), "memory_limit": ("memory", "memory.limit_in_bytes"),
                   "pids_current": ("pids", "pids.current"), "pids_limit": ("pids", "pids.max")}

    def __init__(self, name: str, root: str = CGROUP_ROOT):
        super().__init__(name)
        self.root = root

    def dirs(self) -> dict[str, str]:
        return {c: os.path.join(self.root, c, PARENT, self.name) for c in _V1_CONTROLLERS if os.path.isdir(os.path.join(self.root, c))}

    def make(self, memory: int | None, memory_swap: int | None, cpus: float | None, pids: int | None) -> None:
        """Create the dirs and write the limits."""
        dirs = self.dirs()
        for path in dirs.values():
            os.makedirs(path, exist_ok=True)
        if memory is not None:
            write_text(os.path.join(dirs["memory"], "memory.limit_in_bytes"), str(memory))
            memsw = os.path.join(dirs["memory"], "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):
                swap = memory_swap if memory_swap is not None else 2 * memory
                write_text(memsw, str(swap))
        if cpus is not None:
            write_text(os.path.join(dirs["cpu"], "cpu.cfs_period_us"), str(CFS_PERIOD))
            write_text(os.path.join(dirs["cpu"], "cpu.cfs_quota_us"), str(int(cpus * CFS_PERIOD)))
        if pids is not None:
            write_text(os.path.join(dirs["pids"], "pids.max"), str(pids))

    def oom_killed(self) -> bool:
        control = _keyed(read_text(os.path.join(self.dirs().get("memory", ""), "memory.oom_control")))
        return control.get("oom_kill", 0) > 0

    def kill_all(self) -> None:
        """Freeze, SIGKILL everything, thaw: nothing can fork away meanwhile.

        The cgroup may vanish at any point (its container exited and its owner removed
        it): then nothing is left to kill."""
        state = os.path.join(self.dirs().get("freezer", ""), "freezer.state")
        frozen = os.path.exists(state)
        try:
            if frozen:
                write_text(state, "FROZEN")
        except FileNotFoundError:
            frozen = False
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            if frozen:
                try:
                    write_text(state, "THAWED")
                except FileNotFoundError:
                    pass
        super().kill_all()


class CgroupV2(Cgroup):
    """cgroup v2: one directory; controllers enabled in the parent's subtree_control."""

    version = "v2"
    _STAT_FILES = {"memory_usage": ("", "memory.current"), "memory_limit": ("", "memory.max"),
                   "pids_current": ("", "pids.current"), "pids_limit": ("", "pids.max")}

    def __init__(self, name: str, root: str = CGROUP_ROOT):
        super().__init__(name)
        self.root = root

    def dirs(self) -> dict[str, str]:
        return {"": os.path.join(self.root, PARENT, self.name)}

    def _enable(self, needed: set[str]) -> None:
        available = set(read_text(os.path.join(self.root, "cgroup.controllers")).split())
        missing = needed - available
        if missing:
            raise CgroupError(f"cgroup v2 controller(s) {', '.join(sorted(missing))} not available at {self.root}; "
                              "they may be bound to a v1 hierarchy on this host")
        parent = os.path.join(self.root, PARENT)
        os.makedirs(parent, exist_ok=True)
        for path in (self.root, parent):
            enabled = set(read_text(os.path.join(path, "cgroup.subtree_control")).split())
            if needed - enabled:
                write_text(os.path.join(path, "cgroup.subtree_control"), " ".join(f"+{c}" for c in sorted(needed - enabled)))

    def make(self, memory: int | None, memory_swap: int | None, cpus: float | None, pids: int | None) -> None:
        """Create the dir (enabling the controllers the limits need) and write the limits."""
        needed = {c for c, v in (("memory", memory), ("cpu", cpus), ("pids", pids)) if v is not None}
        self._enable(needed)
        path = self.dirs()[""]
        os.makedirs(path, exist_ok=True)
        if memory is not None:
            write_text(os.path.join(path, "memory.max"), str(memory))
            swap_max = os.path.join(path, "memory.swap.max")
            if os.path.exists(swap_max):
                swap = (memory_swap if memory_swap is not None else 2 * memory) - memory
                write_text(swap_max, "max" if memory_swap == -1 else str(max(swap, 0)))
        if cpus is not None:
            write_text(os.path.join(path, "cpu.max"), f"{int(cpus * CFS_PERIOD)} {CFS_PERIOD}")
        if pids is not None:
            write_text(os.path.join(path, "pids.max"), str(pids))

    def oom_killed(self) -> bool:
        return _keyed(read_text(os.path.join(self.dirs()[""], "memory.events"))).get("oom_kill", 0) > 0

    def kill_all(self) -> None:
        """``cgroup.kill`` (Linux 5.14+), else SIGKILL each process."""
        kill_file = os.path.join(self.dirs()[""], "cgroup.kill")
        try:
            if os.path.exists(kill_file):  # Linux 5.14+
                write_text(kill_file, "1")
        except FileNotFoundError:  # the cgroup is already gone
            pass
        super().kill_all()


class CgroupNone(Cgroup):
    """No cgroup (rootless mode without delegation): the container runs without limits.

    Its processes are found through the container's pid 1 (``pid1``: pid and start
    time), and killing that ends its pid namespace, so kill_all still ends everything.
    """

    version = "none"
    pid1: tuple[int | None, str | None] = (None, None)

    def dirs(self) -> dict[str, str]:
        return {}

    def pids(self) -> set[int]:
        pid, start = self.pid1
        return {pid} if pid and alive(pid, start) else set()

    def make(self, memory: int | None, memory_swap: int | None, cpus: float | None, pids: int | None) -> None:
        """Nothing to make; a limit cannot be applied (the caller refuses it earlier with why)."""
        for flag, value in (("--memory", memory), ("--cpus", cpus), ("--pids-limit", pids)):
            if value is not None:
                raise CgroupError(ROOTLESS_NO_LIMITS.format(flag=flag, version=host_version(self.root)))

    def __init__(self, name: str, root: str = CGROUP_ROOT):
        super().__init__(name)
        self.root = root

    def oom_killed(self) -> bool:
        return False


def open_cgroup(name: str, version: str | None = None, root: str = CGROUP_ROOT) -> Cgroup:
    """The (possibly existing) cgroup ``pybuild/<name>`` for ``version`` (default: detected)."""
    version = version or detect(root)
    if version == "none":
        return CgroupNone(name, root)
    return CgroupV2(name, root) if version == "v2" else CgroupV1(name, root)


def create(name: str, memory: int | None = None, memory_swap: int | None = None, cpus: float | None = None,
           pids: int | None = None, version: str | None = None, root: str = CGROUP_ROOT) -> Cgroup:
    """Create ``pybuild/<name>`` with the given limits (bytes, CPUs, process count)."""
    cg = open_cgroup(name, version, root)
    try:
        cg.make(memory, memory_swap, cpus, pids)
    except OSError as err:
        cg.remove()
        raise CgroupError(f"cannot set up cgroup {PARENT}/{name}: {err}") from err
    return cg
