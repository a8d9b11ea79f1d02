"""Helpers for the layer codec tests: raw tar entries, tree listings."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from registry.layer import tarformat as tf


def entry(name: str | bytes, data: bytes = b"", *, kind: bytes = tf.REGULAR, mode: int = 0o644, link: str | bytes = "",
          uid: int = 0, gid: int = 0, mtime: int = 0, dev: tuple[int, int] = (0, 0),
          xattrs: dict[bytes, bytes] | None = None) -> bytes:
    """One raw tar entry (header + padded data), names taken as they are."""
    name_b = name.encode() if isinstance(name, str) else name
    link_b = link.encode() if isinstance(link, str) else link
    head = tf.header(name_b, mode, uid, gid, len(data), mtime, kind, link_b, dev[0], dev[1], xattrs)
    return head + data + bytes(tf.padding(len(data)))


def archive(*entries: bytes, end: bool = True) -> io.BytesIO:
    """A tar stream of raw entries."""
    return io.BytesIO(b"".join(entries) + (tf.ZERO_BLOCK * 2 if end else b""))


def listing(top: Path, exclude: Path | None = None) -> dict[str, tuple]:
    """Every path under ``top`` with its mode, owner, link count, content, link target, xattrs and mtime."""
    out: dict[str, tuple] = {}
    for dirpath, dirs, files in os.walk(top):
        if exclude is not None and Path(dirpath) == exclude.parent:
            dirs[:] = [d for d in dirs if Path(dirpath, d) != exclude]
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            content = open(path, "rb").read() if stat.S_ISREG(st.st_mode) else b""
            xattrs = sorted((k, os.getxattr(path, k, follow_symlinks=False)) for k in
                            os.listxattr(path, follow_symlinks=False))
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            out[os.path.relpath(path, top)] = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink, content, link, xattrs,
                                               int(st.st_mtime))
    return out
