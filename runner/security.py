"""Privilege reduction: capabilities, no_new_privs and the default seccomp filter.

Defaults follow Docker: the bounding set is cut to Docker's 14 default
capabilities; root keeps them effective and permitted, any other user gets none;
inheritable and ambient sets are empty.  The seccomp filter uses libseccomp's
maintained Python binding (Debian ``python3-seccomp``) when it can be loaded; it
denies (EPERM) the system calls Docker's default profile keeps from containers.
"""

from __future__ import annotations

import errno
import os

from . import syscalls

CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]  # index == capability number

DOCKER_DEFAULT_CAPS = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
]


class SecurityError(Exception):
    """A bad capability name or a failed privilege change."""


def _cap_number(name: str) -> int:
    key = name.upper().removeprefix("CAP_")
    try:
        return CAPABILITIES.index(key)
    except ValueError:
        raise SecurityError(f"unknown capability {name!r} (e.g. NET_ADMIN, SYS_PTRACE)") from None


def capability_set(add: list[str], drop: list[str]) -> int:
    """Docker's default set with ``--cap-add``/``--cap-drop`` applied (``ALL`` allowed)."""
    names = set(DOCKER_DEFAULT_CAPS)
    if any(d.upper() == "ALL" for d in drop):
        names = set()
    names -= {d.upper().removeprefix("CAP_") for d in drop if d.upper() != "ALL"}
    if any(a.upper() == "ALL" for a in add):
        names = set(CAPABILITIES)
    names |= {a.upper().removeprefix("CAP_") for a in add if a.upper() != "ALL"}
    mask = 0
    for name in names:
        mask |= 1 << _cap_number(name)
    return mask


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return int(fh.read())
    except OSError:
        return len(CAPABILITIES) - 1


def drop_bounding(keep: int) -> None:
    """Remove every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    for cap in range(_last_cap() + 1):
        if not keep & (1 << cap) and syscalls.prctl(syscalls.PR_CAPBSET_READ, cap) == 1:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)


def switch_user(uid: int, gid: int, groups: list[int], caps: int) -> None:
    """Become ``uid:gid`` with ``groups``; root keeps ``caps``, other users keep none."""
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # clears effective/permitted caps for a non-root uid
    kept = caps if uid == 0 else 0
    syscalls.capset(kept, kept, 0)
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)


def set_no_new_privs() -> None:
    """Setuid/setgid bits and file capabilities no longer raise privileges on exec."""
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)


# Syscalls Docker's default profile refuses to a container without extra capabilities.
_DENIED = [
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "move_pages",
    "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open", "process_vm_readv",
    "process_vm_writev", "query_module", "quotactl", "reboot", "request_key", "set_mempolicy",
    "settimeofday", "stime", "swapon", "swapoff", "sysfs", "_sysctl", "uselib", "userfaultfd",
    "ustat", "vm86", "vm86old", "syslog",
]
# Refused unless CAP_SYS_ADMIN was added (as Docker does).
_DENIED_WITHOUT_SYS_ADMIN = [
    "mount", "umount2", "pivot_root", "setns", "unshare", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr",
]
_NAMESPACE_FLAGS = [
    syscalls.CLONE_NEWNS, syscalls.CLONE_NEWCGROUP, syscalls.CLONE_NEWUTS, syscalls.CLONE_NEWIPC,
    syscalls.CLONE_NEWUSER, syscalls.CLONE_NEWPID, syscalls.CLONE_NEWNET,
]


_DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def load_seccomp_module():
    """libseccomp's Python binding (Debian ``python3-seccomp``), or None when absent.

    Loaded straight from Debian's dist-packages with an extension loader (our venv
    does not see that directory, and a search through ``sys.path`` and ``importlib.util``
    would cost the run path tens of milliseconds).  Call before pivot_root: the module
    is cached in ``sys.modules`` for later.
    """
    import sys

    if "seccomp" in sys.modules:
        return sys.modules["seccomp"]
    from importlib.machinery import ExtensionFileLoader, ModuleSpec

    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    try:
        name = next(n for n in os.listdir(_DIST_PACKAGES) if n.startswith(f"seccomp.{tag}") and n.endswith(".so"))
    except (OSError, StopIteration):
        return None
    path = os.path.join(_DIST_PACKAGES, name)
    loader = ExtensionFileLoader("seccomp", path)
    try:
        module = loader.create_module(ModuleSpec("seccomp", loader, origin=path))
        loader.exec_module(module)
    except ImportError:
        return None
    sys.modules["seccomp"] = module
    return module


def apply_seccomp(caps: int, no_new_privs: bool = True) -> bool:
    """Load the default filter into this process; False when no binding is available.

    Without ``no_new_privs`` (docker build's RUN) the filter is loaded with the
    CAP_SYS_ADMIN the process still holds, so libseccomp must not set it either.
    """
    seccomp = load_seccomp_module()
    if seccomp is None:
        return False
    flt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    if not no_new_privs:
        flt.set_attr(seccomp.Attr.CTL_NNP, 0)
    denied = list(_DENIED)
    if not caps & (1 << CAPABILITIES.index("SYS_ADMIN")):
        denied += _DENIED_WITHOUT_SYS_ADMIN
        for flag in _NAMESPACE_FLAGS:
            flt.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        flt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # libc falls back to clone, which is checked
    for name in denied:
        try:
            flt.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (ValueError, RuntimeError, OSError):
            pass  # not a syscall on this architecture
    flt.load()
    return True
