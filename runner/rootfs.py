"""Build the container's root filesystem, one explicit step per function.

Runs in the container's first process, inside its new mount namespace, before
``pivot_root`` (:func:`prepare`) and right after it (:func:`harden_proc`).  The order
matters and mirrors runc's libcontainer: private propagation, overlay, /proc, /dev,
/sys, generated /etc files, user mounts, read-only root, pivot_root, masked paths.
"""

from __future__ import annotations

import os

from base import safepath
from base.removal import remove_tree

from . import syscalls as sc
from .overlay import overlay_options
from .spec import SandboxSpec
from .textfile import read_text, write_text

# Mount points the init layer provides, so nothing the sandbox needs is written to
# the upper dir (a RUN step's layer) and no image symlink can redirect them.
_INIT_DIRS = ("proc", "dev", "sys", "etc")
ETC_FILES = ("hosts", "hostname", "resolv.conf")

_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_DEV_LINKS = (
    ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"),
)
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


class RootfsError(Exception):
    """A mount step failed; the message names the step and the path."""


def write_state_files(spec: SandboxSpec) -> None:
    """Generate hosts, hostname, resolv.conf and the init layer in ``spec.state_dir``.

    Done by the caller (on the host, before the namespaces): plain files it owns.
    """
    state = spec.state_dir
    init = os.path.join(state, "init")
    os.makedirs(os.path.join(state, "rootfs"), exist_ok=True)
    for name in _INIT_DIRS:
        os.makedirs(os.path.join(init, name), exist_ok=True)
    for name in ETC_FILES:
        open(os.path.join(init, "etc", name), "a").close()
    if not os.path.lexists(os.path.join(init, "etc", "mtab")):  # docker's init layer has it too
        os.symlink("/proc/mounts", os.path.join(init, "etc", "mtab"))
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    if spec.network == "host":
        hosts = read_text("/etc/hosts") or hosts
    else:
        hosts += f"127.0.1.1\t{spec.hostname}\n"
    write_text(os.path.join(state, "hosts"), hosts if spec.hosts is None else spec.hosts)
    write_text(os.path.join(state, "hostname"), spec.hostname + "\n")
    _forget_volatile(spec.workdir)
    resolv = read_text("/etc/resolv.conf") if spec.network == "host" else ""
    write_text(os.path.join(state, "resolv.conf"), resolv if spec.resolv_conf is None else spec.resolv_conf)


def _forget_volatile(workdir: str) -> None:
    """Allow an upper/work pair to be mounted again after a clean run.

    A ``volatile`` overlay leaves ``work/incompat/volatile`` behind and refuses the
    same workdir until it is gone.  Callers reuse a pair only after the previous
    sandbox exited (an interrupted RUN step's upper dir is thrown away, never reused).
    """
    marker = os.path.join(workdir, "work", "incompat")
    if os.path.isdir(marker):

        remove_tree(marker)




def mount_overlay(spec: SandboxSpec, rootfs: str) -> None:
    """Overlay of the image's snapshots and the init layer, changes to ``spec.upperdir``."""
    top = os.path.join(spec.state_dir, "init")
    base, data = overlay_options(list(spec.lowerdirs), spec.upperdir, spec.workdir, top)
    old = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.chdir(base)
        sc.mount("overlay", rootfs, "overlay", sc.MS_NODEV, data)
    finally:
        os.fchdir(old)
        os.close(old)


def mount_proc(rootfs: str) -> None:
    """A fresh procfs for the new pid namespace."""
    sc.mount("proc", f"{rootfs}/proc", "proc", _NOSUID_NODEV_NOEXEC)


def mount_dev(rootfs: str, devices: list[list[str]] | None = None) -> None:
    """A nodev tmpfs /dev with the usual nodes bind-mounted from the host, a private
    devpts, /dev/shm and /dev/mqueue.

    Every writable mount of the container is ``nodev`` and the device nodes are binds
    of the host's, so a node made with CAP_MKNOD can never be opened: no devices
    cgroup (which cgroup v2 only offers through eBPF) is needed to keep the host's
    disks out of reach.
    """
    dev = f"{rootfs}/dev"
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_STRICTATIME, "mode=755,size=65536k")
    for name in _DEVICES:
        os.close(os.open(f"{dev}/{name}", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
        sc.mount(f"/dev/{name}", f"{dev}/{name}", None, sc.MS_BIND | sc.MS_NOSUID | sc.MS_NOEXEC)
    for source, target in devices or []:  # --device: host nodes bound like the usual ones
        os.makedirs(os.path.dirname(f"{rootfs}{target}"), exist_ok=True)
        os.close(os.open(f"{rootfs}{target}", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
        sc.mount(source, f"{rootfs}{target}", None, sc.MS_BIND | sc.MS_NOSUID | sc.MS_NOEXEC)
    for name, target in _DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    for name in ("pts", "shm", "mqueue"):
        os.mkdir(f"{dev}/{name}", 0o755)
    sc.mount("devpts", f"{dev}/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
    sc.mount("shm", f"{dev}/shm", "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k")
    try:
        sc.mount("mqueue", f"{dev}/mqueue", "mqueue", _NOSUID_NODEV_NOEXEC)
    except OSError:
        pass  # optional, as in runc


def mount_sys(rootfs: str, cgroup_dirs: dict[str, str], writable: bool = False) -> None:
    """Read-only sysfs (writable with --privileged), with the container's own cgroup dirs at /sys/fs/cgroup/<name>."""
    sys_dir = f"{rootfs}/sys"
    try:
        sc.mount("sysfs", sys_dir, "sysfs", _NOSUID_NODEV_NOEXEC | (0 if writable else sc.MS_RDONLY))
    except PermissionError:
        # a user namespace that does not own the network namespace (rootless, host
        # network) may not mount sysfs: show the host's read-only, as rootless runc does
        bind("/sys", sys_dir, readonly=True, flags=_NOSUID_NODEV_NOEXEC)
    cg = f"{sys_dir}/fs/cgroup"
    if not cgroup_dirs or not os.path.isdir(cg):
        return
    if "" in cgroup_dirs:  # v2: the container's cgroup is the whole tree it sees
        bind(cgroup_dirs[""], cg, readonly=True, flags=_NOSUID_NODEV_NOEXEC)
        return
    sc.mount("tmpfs", cg, "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=755,size=64k")
    for name, host_dir in cgroup_dirs.items():
        target = f"{cg}/{name}"
        os.mkdir(target)
        bind(host_dir, target, readonly=True)
    sc.mount(None, cg, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _NOSUID_NODEV_NOEXEC)


def bind(source: str, target: str, readonly: bool, flags: int = 0) -> None:
    """Bind ``source`` on ``target`` (recursively), then make it read-only if asked."""
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC | flags)
    if readonly:
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | flags)


def mount_etc_files(spec: SandboxSpec, rootfs: str) -> None:
    """Bind the generated files over /etc/{hosts,hostname,resolv.conf} (never into the layer)."""
    mine = {m.target.rstrip("/") for m in spec.mounts}
    for name in ETC_FILES:
        if f"/etc/{name}" in mine:  # the user's own -v .../etc/hosts wins, as with docker
            continue
        target = _mount_target(rootfs, f"/etc/{name}", False)  # a volume on /etc holds the image's files: links too
        bind(os.path.join(spec.state_dir, name), target, readonly=False, flags=sc.MS_NOSUID | sc.MS_NODEV)


# Files inside /proc that runc lets a bind mount cover (what lxcfs emulates).
_PROC_FILES = ("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo",
               "net/dev", "sys/kernel/ns_last_pid")


def _check_proc(inside: str) -> None:
    """Refuse a mount over /proc or in it, as runc does (``inside``: the resolved
    target, absolute in the container): it would hide or fake the kernel's view."""
    if inside == "/proc":
        raise RootfsError(f'"{inside}" cannot be mounted because it is not of type proc')
    if inside.startswith("/proc/") and inside[len("/proc/"):] not in _PROC_FILES:
        raise RootfsError(f'"{inside}" cannot be mounted because it is inside /proc')


def _mount_target(rootfs: str, target: str, is_dir: bool) -> str:
    """Host path of the mount point for container path ``target``, resolved inside the
    rootfs (symlinks taken from it, ``..`` stopped at it) and made if missing."""
    target = os.path.normpath("/" + target)  # lexically first, as docker cleans a volume's path
    rel = os.path.relpath(safepath.resolve(rootfs, target), rootfs)
    _check_proc("/" if rel == "." else "/" + rel)
    host = safepath.resolve(rootfs, target, create_parents=True)
    if not os.path.lexists(host):
        if is_dir:
            os.mkdir(host, 0o755)
        else:
            os.close(os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
    return host


def mount_user(spec: SandboxSpec, rootfs: str) -> None:
    """Volumes, tmpfs, cache and secret mounts, at targets resolved inside the rootfs."""
    for m in spec.mounts:
        what = "tmpfs" if m.type == "tmpfs" else m.source
        try:
            if m.type == "tmpfs":
                target = _mount_target(rootfs, m.target, True)
                flags = sc.MS_NOSUID | sc.MS_NODEV | (sc.MS_RDONLY if m.readonly else 0)
                sc.mount("tmpfs", target, "tmpfs", flags, m.options or "mode=1777")
            elif m.type == "bind":
                if m.source is None or not os.path.exists(m.source):
                    raise RootfsError(f"bind source path does not exist: {m.source}")
                target = _mount_target(rootfs, m.target, os.path.isdir(m.source))
                if m.options == "populate":  # a named volume: docker copies the image's files in
                    from .volumecopy import populate

                    populate(target, m.source)
                bind(m.source, target, m.readonly, flags=sc.MS_NODEV)
            else:
                raise RootfsError(f"unknown mount type {m.type!r}")
        except (RootfsError, OSError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise RootfsError(f'error mounting "{what}" to rootfs at "{m.target}": {reason}') from None


def _make_workdir(rootfs: str, cwd: str) -> None:
    """Create a missing working directory (root-owned, 0755, as docker does), inside the
    rootfs also through a dangling symlink, while the root is still writable."""
    try:
        fd = safepath.open_dir(rootfs, cwd, create=True, mode=0o755, owner=(0, 0))
    except NotADirectoryError:
        return  # the chdir into it fails with docker's message
    if fd is not None:
        os.close(fd)


def pivot(rootfs: str) -> None:
    """Make ``rootfs`` the root and detach the old one (runc's pivot_root(".", ".") trick)."""
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    sc.umount(".", sc.MNT_DETACH)
    os.chdir("/")


def prepare(spec: SandboxSpec, rootfs: str) -> None:
    """Every mount step before pivot_root, in order."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    mount_overlay(spec, rootfs)
    mount_proc(rootfs)
    mount_dev(rootfs, spec.devices)
    mount_sys(rootfs, spec.cgroup_dirs, writable=spec.privileged)
    mount_user(spec, rootfs)
    mount_etc_files(spec, rootfs)  # after volumes, as docker: a volume on /etc still gets them
    _make_workdir(rootfs, spec.cwd)
    if spec.readonly_rootfs:
        sc.mount(None, rootfs, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NODEV)
    pivot(rootfs)


def harden_proc() -> None:
    """After pivot_root: mask sensitive /proc and /sys paths, make others read-only."""
    for path in MASKED_PATHS:
        if os.path.isdir(path):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY)
        elif os.path.exists(path):
            sc.mount("/dev/null", path, None, sc.MS_BIND)
    for path in READONLY_PATHS:
        if os.path.exists(path):
            bind(path, path, readonly=True, flags=_NOSUID_NODEV_NOEXEC)
