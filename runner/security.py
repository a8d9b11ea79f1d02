"""Privilege reduction: capabilities, no_new_privs and the default seccomp filter.

Defaults follow Docker: the bounding set is cut to Docker's 14 default
capabilities; root keeps them effective and permitted, any other user gets none;
inheritable and ambient sets are empty.  The seccomp filter uses libseccomp's
maintained Python binding (Debian ``python3-seccomp``); it is docker's default
profile (:mod:`runner.seccomp_profile`): an allow-list, EPERM for everything else.
"""

from __future__ import annotations

import errno
import os

from . import seccomp_profile as profile
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


_DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def seccomp_binding() -> str | None:
    """The path of libseccomp's Python binding for this interpreter (Debian ``python3-seccomp``), or None."""
    import sys

    tag = f"seccomp.cpython-{sys.version_info.major}{sys.version_info.minor}"
    try:
        name = next(n for n in os.listdir(_DIST_PACKAGES) if n.startswith(tag) and n.endswith(".so"))
    except (OSError, StopIteration):
        return None
    return os.path.join(_DIST_PACKAGES, name)


def load_seccomp_module():
    """libseccomp's Python binding, or None when absent.

    Loaded straight from Debian's dist-packages with an extension loader (our venv
    does not see that directory, and a search through ``sys.path`` and ``importlib.util``
    would cost the run path tens of milliseconds).  Call before pivot_root: the module
    is cached in ``sys.modules`` for later.
    """
    import sys

    if "seccomp" in sys.modules:
        return sys.modules["seccomp"]
    from importlib.machinery import ExtensionFileLoader, ModuleSpec

    path = seccomp_binding()
    if path is None:
        return None
    loader = ExtensionFileLoader("seccomp", path)
    try:
        module = loader.create_module(ModuleSpec("seccomp", loader, origin=path))
        loader.exec_module(module)
    except ImportError:
        return None
    sys.modules["seccomp"] = module
    return module


SECCOMP_MISSING = ("seccomp filter unavailable: libseccomp's Python binding is missing; install the Debian "
                   "package python3-seccomp, or run with --security-opt seccomp=unconfined")

# 32-bit ABIs a 64-bit kernel also runs, filtered by the same rules (docker's archMap;
# x32 is left out: most kernels disable it, and each extra ABI costs ~2 ms per start).
_COMPAT_ARCHES = {"x86_64": "X86", "aarch64": "ARM", "s390x": "S390"}


def _allowed_names(caps: int) -> list[str]:
    """Docker's allow-list for a container holding ``caps``."""
    names = dict.fromkeys(profile.ALLOWED)
    names.update(dict.fromkeys(profile.ALLOWED_ON_ARCH.get(os.uname().machine, ())))
    for cap, extra in profile.BY_CAPABILITY.items():
        if caps & (1 << CAPABILITIES.index(cap)):
            names.update(dict.fromkeys(extra))
    return list(names)


_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_RET_ALLOW, _RET_ENOSYS = 0x7FFF0000, 0x00050000 | errno.ENOSYS
_LD_W_ABS, _JEQ_K, _JGT_K, _RET_K = 0x20, 0x15, 0x25, 0x06


def _enosys_above(limits: list[tuple[int, int]]) -> None:
    """Load a second filter: ENOSYS for system call numbers above the profile's newest.

    ``limits``: (AUDIT_ARCH value, highest number the profile names) per ABI.  As
    runc does, so a libc that tries a system call newer than the profile (fchmodat2,
    statmount, ...) sees "not implemented" and falls back, instead of EPERM.  For
    two ERRNO verdicts the newest filter's errno wins; its ALLOW leaves the first
    filter's verdict alone.
    """
    import ctypes

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    code = [(_LD_W_ABS, 0, 0, 4)]  # seccomp_data.arch
    for i, (arch, highest) in enumerate(limits):
        left = 3 * (len(limits) - i - 1)  # instructions of the blocks after this one
        code += [(_JEQ_K, 0, 2, arch), (_LD_W_ABS, 0, 0, 0), (_JGT_K, left + 1, left, highest)]
    code += [(_RET_K, 0, 0, _RET_ALLOW), (_RET_K, 0, 0, _RET_ENOSYS)]
    program = (SockFilter * len(code))(*code)  # type: ignore[misc]  # ctypes builds each struct from its tuple
    fprog = SockFprog(len(code), program)
    syscalls.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


def apply_seccomp(caps: int, no_new_privs: bool = True) -> bool:
    """Load docker's default filter for ``caps`` into this process; False when no binding.

    Unlisted system calls fail with EPERM.  Without ``no_new_privs`` (docker build's
    RUN) the filter is loaded with the CAP_SYS_ADMIN the process still holds, so
    libseccomp must not set it either.  Built afresh on every start (about 5 ms in a
    fresh process); a second, tiny filter answers ENOSYS above the profile's newest
    system call.
    """
    seccomp = load_seccomp_module()
    if seccomp is None:
        return False
    flt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    machine = os.uname().machine
    arches = [seccomp.Arch.NATIVE]
    if machine in _COMPAT_ARCHES:
        arches.append(getattr(seccomp.Arch, _COMPAT_ARCHES[machine]))
        flt.add_arch(arches[-1])
    if not no_new_privs:
        flt.set_attr(seccomp.Attr.CTL_NNP, 0)
    allow = seccomp.ALLOW
    names = _allowed_names(caps)
    for name in names:
        try:
            flt.add_rule(allow, name)
        except (ValueError, RuntimeError, OSError):
            pass  # not a system call of this architecture
    for persona in profile.PERSONALITIES:
        flt.add_rule(allow, "personality", seccomp.Arg(0, seccomp.EQ, persona))
    flt.add_rule(allow, "socket", seccomp.Arg(0, seccomp.NE, profile.AF_VSOCK))
    if not caps & (1 << CAPABILITIES.index("SYS_ADMIN")):
        flags_arg = 1 if machine == "s390x" else 0  # s390 swaps clone's first two arguments
        flt.add_rule(allow, "clone", seccomp.Arg(flags_arg, seccomp.MASKED_EQ, profile.CLONE_NAMESPACE_MASK, 0))
        flt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # libc falls back to clone, whose flags are checked
    flt.load()
    named = names + ["personality", "socket", "clone", "clone3"]
    _enosys_above([(_audit_arch(seccomp, arch), _highest(seccomp, arch, named)) for arch in arches])
    return True


def _audit_arch(seccomp, arch) -> int:
    if arch == seccomp.Arch.NATIVE:
        arch = seccomp.system_arch()
    return int(arch) & 0xFFFFFFFF


def _highest(seccomp, arch, names: list[str]) -> int:
    """The highest system call number among ``names`` on ``arch`` (unknown names skipped)."""
    highest = 0
    for name in names:
        try:
            highest = max(highest, seccomp.resolve_syscall(arch, name))
        except (ValueError, RuntimeError, OSError):
            pass
    return highest
