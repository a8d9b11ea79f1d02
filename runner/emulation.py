"""Whether this host can run a foreign platform's binaries: qemu user emulation via binfmt_misc.

A foreign binary exec'd in a container runs only when the kernel has a binfmt_misc
handler for its ELF machine registered with the ``F`` (fix binary) flag: the kernel
then opened the interpreter at registration, so it is found inside the container's
mount namespace, where the host's ``/usr/libexec/qemu-binfmt`` does not exist.
Without this check the user would see ``exec format error`` and nothing about why.
"""

from __future__ import annotations

import os

from registry.platform import QEMU_NAMES, Platform, native

from .errors import RunError

BINFMT_DIR = "/proc/sys/fs/binfmt_misc"
_FIX = "install Debian's qemu-user-static and register it with binfmt_misc with the F flag (scripts/setup.sh does both)"


def problem(platform: Platform) -> str | None:
    """Why ``platform``'s binaries cannot run here, or None when they can."""
    if native(platform):
        return None
    if platform.os != "linux":
        return f"cannot run {platform} binaries on a linux host"
    name = QEMU_NAMES.get(platform.architecture)
    if name is None:
        return f"cannot run {platform} binaries: qemu has no user emulation for {platform.architecture}"
    if not os.path.exists(os.path.join(BINFMT_DIR, "register")):
        return f"cannot run {platform} binaries: binfmt_misc is not mounted at {BINFMT_DIR}; {_FIX}"
    try:
        with open(os.path.join(BINFMT_DIR, f"qemu-{name}")) as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return f"cannot run {platform} binaries: no qemu-{name} handler in binfmt_misc; {_FIX}"
    if not lines or lines[0] != "enabled":
        return f"cannot run {platform} binaries: the qemu-{name} binfmt_misc handler is disabled; {_FIX}"
    flags = next((line.split(":", 1)[1] for line in lines if line.startswith("flags:")), "")
    if "F" not in flags:
        return (f"cannot run {platform} binaries in a container: the qemu-{name} binfmt_misc handler lacks "
                f"the F flag; {_FIX}")
    return None


def require(platform: Platform) -> None:
    """Raise :class:`RunError` with one line saying what to install when ``platform`` cannot run."""
    reason = problem(platform)
    if reason is not None:
        raise RunError(reason)
