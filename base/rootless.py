"""Whether this process runs in pybuild's rootless user namespace (set up by ``runner.userns``).

In base because the layer codec needs it too: overlayfs inside a user namespace keeps
its metadata in ``user.overlay.*`` xattrs (mount option ``userxattr``), where real root's
overlay uses ``trusted.overlay.*``, which an unprivileged namespace cannot write.
"""

from __future__ import annotations

import os

ENV_FLAG = "PYBUILD_ROOTLESS"  # set in the namespace, inherited by the shim and helpers


def active() -> bool:
    """True inside the rootless namespace."""
    return os.environ.get(ENV_FLAG) == "1"


def overlay_xattr(name: str) -> bytes:
    """The overlay xattr ``name`` (e.g. ``opaque``) as this mode's overlay mounts read and write it."""
    return (b"user.overlay." if active() else b"trusted.overlay.") + name.encode()
