"""The one overlayfs option builder, for the runner's containers and the builder's steps.

Every pybuild overlay mount takes its options from :func:`overlay_options`, so the
build's COPY/ADD/WORKDIR mounts and the sandbox's can never drift apart again.
"""

from __future__ import annotations

import os

from base import rootless

# The upper dir must stay a self-contained diff whatever the kernel's defaults, since
# the tar writer reads it as the layer: no renamed directory recorded as a redirect
# xattr into a lower layer, no metadata-only copy-up (a chown would leave a file
# without its data in the upper dir), no inode index.
DIFF_OPTIONS = "redirect_dir=off,metacopy=off,index=off"
PAGE = 4096


def overlay_options(lowerdirs: list[str], upperdir: str | None = None, workdir: str | None = None,
                    top: str | None = None) -> tuple[str, str]:
    """``(cwd, data)`` for an overlay of ``lowerdirs`` (bottom first), plus ``top`` above
    them (the runner's init layer), writable into ``upperdir`` when given.

    The lowerdirs are given relative to their common parent (the mount runs with that as
    cwd), which keeps the option string under the one page the kernel takes for 100+
    layers; ``top``, upper and work dirs stay absolute.  ``volatile`` (Linux 5.10+)
    skips syncing the upper filesystem when the mount goes away: that sync cost ~100 ms
    per container, and an upper dir is never reused after a crash (a layer is made
    durable as a blob, not in place).
    """
    if len(lowerdirs) > 1:
        base = os.path.commonpath(lowerdirs)
    else:
        base = os.path.dirname(lowerdirs[0]) if lowerdirs else "/"
    lowers = ([top] if top else []) + [os.path.relpath(p, base) for p in reversed(lowerdirs)]
    data = f"lowerdir={':'.join(lowers)}"
    if upperdir is not None:
        data += f",upperdir={upperdir},workdir={workdir},volatile"
    if rootless.active():
        # in a user namespace overlayfs keeps its xattrs under user.overlay.* (userxattr),
        # which refuses to follow redirects: "nofollow" is "off" without following
        data += "," + DIFF_OPTIONS.replace("redirect_dir=off", "redirect_dir=nofollow") + ",userxattr"
    else:
        data += "," + DIFF_OPTIONS
    if len(data) >= PAGE:
        raise OSError(f"overlay options for {len(lowerdirs)} layers exceed one page; "
                      "use a shorter PYBUILD_ROOT (the snapshots' path)")
    return base, data
