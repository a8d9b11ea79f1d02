"""Fill an empty named volume from the image, inside the container's mount namespace.

Its own small module: it runs in the container's first process, before pivot_root,
where only cheap imports are welcome.
"""

from __future__ import annotations

import os
import stat


def populate(image_dir: str, volume: str) -> None:
    """Copy what the image has at ``image_dir`` into the empty ``volume`` (ownership, modes, links).

    Never follows a symlink of the (hostile) image: links are copied as links,
    device nodes and sockets are skipped, files are opened ``O_NOFOLLOW``.
    """
    try:
        top = os.lstat(image_dir)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode) or os.listdir(volume):
        return
    _copy_tree(image_dir, volume)
    os.chown(volume, top.st_uid, top.st_gid)
    os.chmod(volume, stat.S_IMODE(top.st_mode))


def _copy_tree(src: str, dst: str) -> None:
    """Copy without recursion (an image may nest directories thousands deep); a directory's
    own mode and times are set after its contents, deepest first, so writing into it
    neither fails on a read-only mode nor moves its mtime."""
    pending = [(src, dst)]
    directories: list[tuple[str, os.stat_result]] = []
    while pending:
        src_dir, dst_dir = pending.pop()
        for entry in os.scandir(src_dir):
            st = entry.stat(follow_symlinks=False)
            target = os.path.join(dst_dir, entry.name)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(target, 0o700)
                pending.append((entry.path, target))
                directories.append((target, st))
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.path), target)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(entry.path, target)
            else:
                continue
            _set_metadata(target, st)
    for target, st in reversed(directories):
        _set_metadata(target, st)


def _set_metadata(target: str, st: os.stat_result) -> None:
    os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_file(src: str, dst: str) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            while os.sendfile(fout, fin, None, 1 << 20):
                pass
        finally:
            os.close(fout)
    finally:
        os.close(fin)
