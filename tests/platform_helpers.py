"""An arm64 base made from Debian's ``busybox-static:arm64`` package (no registry, only the mirror).

``apt-get download`` needs arm64 known to dpkg (``scripts/setup.sh`` adds it); the .deb
is downloaded once per test session and unpacked with ``dpkg-deb -x``.  The applet
links come from the host busybox's list (the same Debian version), so making the
rootfs never needs emulation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUSYBOX


def download_busybox_deb(cache: Path, arch: str = "arm64") -> Path:
    """``busybox-static:ARCH`` downloaded into ``cache`` (once); skips, or fails under CI, when it cannot be."""
    found = sorted(cache.glob(f"busybox-static_*_{arch}.deb"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["apt-get", "download", f"busybox-static:{arch}"], cwd=cache, capture_output=True, text=True)
    found = sorted(cache.glob(f"busybox-static_*_{arch}.deb"))
    if proc.returncode != 0 or not found:
        why = f"apt-get download busybox-static:{arch} failed: {proc.stderr.strip().splitlines()[-1:]}"
        if os.environ.get("CI"):
            pytest.fail(why + " (scripts/setup.sh adds the architecture)")
        pytest.skip(why)
    return found[0]


def make_foreign_busybox_rootfs(deb: Path, target: Path) -> Path:
    """A rootfs like conftest's busybox one, with the foreign busybox binary from ``deb``."""
    unpacked = target.parent / (target.name + "-deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    for sub in ("bin", "etc", "tmp", "root", "proc", "dev", "sys"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / "tmp").chmod(0o1777)
    shutil.copy2(unpacked / "bin" / "busybox", target / "bin" / "busybox")
    shutil.rmtree(unpacked)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (target / "bin" / applet).symlink_to("busybox")
    (target / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (target / "etc" / "group").write_text("root:x:0:\n")
    return target


def emulation_ready(arch: str = "aarch64") -> bool:
    """True when qemu-ARCH is registered with binfmt_misc with the F flag (scripts/setup.sh)."""
    try:
        text = Path(f"/proc/sys/fs/binfmt_misc/qemu-{arch}").read_text()
    except OSError:
        return False
    return text.startswith("enabled") and any(line.startswith("flags:") and "F" in line for line in text.splitlines())


def need_emulation(arch: str = "aarch64") -> None:
    if not emulation_ready(arch):
        message = f"qemu-{arch} is not registered with binfmt_misc (F flag); run scripts/setup.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
