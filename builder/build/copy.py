"""COPY and ADD into a mounted rootfs, with Docker's (legacy builder's) semantics.

The rootfs is the step's overlay mount, so whatever is written here lands in the
step's upper dir, and replacing a lower file or dir leaves overlay whiteouts.

Rules: a relative destination is taken from WORKDIR; a destination ending in ``/``
(or an existing directory) receives sources by name; several sources need such a
destination; a directory source is copied by content; a file source that is a
symlink is followed; inside a copied directory symlinks, hard links, modes, fifos
and devices are kept.  Everything written is owned by ``--chown`` (names resolved
in the stage's /etc/passwd and /etc/group) or root; new parent directories are 0755
and owned the same way; an existing destination directory keeps its owner and mode.
ADD extracts local tar archives (plain, gzip, bzip2, xz, zstd) with their owners,
by the layer codec's extractor, and downloads URLs (0600, ``--checksum`` verified).
Every container path is resolved inside the rootfs by :mod:`base.safepath`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from base import safepath
from base.removal import remove_tree
from registry.errors import PybuildError

from .copy_step import absolute_dest


class CopyError(PybuildError):
    """A COPY/ADD that cannot be carried out."""


@dataclass
class CopyRequest:
    """One COPY/ADD with its sources already resolved to paths relative to ``tree``."""

    tree: Any  # a builder.build.context.Context (the build context or a stage's rootfs)
    sources: list[str]
    dest: str
    workdir: str = "/"
    owner: tuple[int, int] | None = (0, 0)  # None: keep the source's owners (COPY --from)
    chmod: int | None = None
    extract: bool = False  # ADD: unpack local archives
    multiple: bool = False  # more than one source was written in the instruction
    remote: list[tuple[str, bytes]] = field(default_factory=list)  # ADD URLs: (name, content)


def run_copy(rootfs: str, req: CopyRequest) -> None:
    """Carry out ``req`` into the mounted ``rootfs``."""
    dest = absolute_dest(req.dest, req.workdir)
    owner = req.owner
    new_dirs = owner or (0, 0)
    count = len(req.sources) + len(req.remote)
    wants_dir = dest.endswith("/")
    if (req.multiple or count > 1) and not wants_dir:
        raise CopyError("When using COPY with more than one source file, the destination must be a directory and end with a /")
    dest_host = _resolve(rootfs, dest)
    dest_is_dir = wants_dir or os.path.isdir(dest_host)
    links: dict[tuple[int, int], str] = {}
    for rel in req.sources:
        src = req.tree.host_path(rel)
        try:
            st = os.stat(src)
        except OSError as err:
            raise CopyError(f"COPY failed: stat {rel}: {err.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            # parents of a copied directory are root's; the directory itself, if new, the owner's
            _ensure_dir(rootfs, os.path.dirname(dest.rstrip("/")) or "/", (0, 0))
            target = _ensure_dir(rootfs, dest, new_dirs)
            fresh: set[str] = set()
            for child, cst, host in req.tree.walk(rel, src):
                name = child[len(rel):].lstrip("/") if rel else child
                _copy_entry(host, cst, os.path.join(target, name), owner, req.chmod, links, fresh)
        elif req.extract and _try_extract(src, rootfs, dest):
            continue
        else:
            path = _file_dest(rootfs, dest, dest_is_dir, os.path.basename(rel), new_dirs)
            _copy_entry(src, st, path, owner, req.chmod, links)
    for name, data in req.remote:
        path = _file_dest(rootfs, dest, dest_is_dir, name, new_dirs)
        _write_file(path, data, 0o600 if req.chmod is None else req.chmod, new_dirs)


def _resolve(rootfs: str, path: str, parents_owner: tuple[int, int] | None = None) -> str:
    """Host path of container ``path`` (symlinks followed inside the rootfs); with
    ``parents_owner`` the directories leading to it are made, also where a dangling
    symlink points (as docker does)."""
    try:
        return safepath.resolve(rootfs, path, create_parents=parents_owner is not None, owner=parents_owner)
    except NotADirectoryError:
        raise CopyError(f"failed to copy files: {path}: not a directory") from None


def _file_dest(rootfs: str, dest: str, dest_is_dir: bool, name: str, owner: tuple[int, int]) -> str:
    """Host path a file source goes to; like docker, an existing symlink there is followed
    (inside the rootfs), so the file lands at the link's target."""
    if dest_is_dir:
        _ensure_dir(rootfs, dest, owner)
        path = os.path.join(dest, name)
    else:
        path = dest.rstrip("/")
        _ensure_dir(rootfs, os.path.dirname(path) or "/", owner)
    return _resolve(rootfs, path, owner)


def _open_dir(rootfs: str, path: str, owner: tuple[int, int]) -> int:
    """An fd of container dir ``path``, missing parts made 0755 owned by ``owner``."""
    try:
        fd = safepath.open_dir(rootfs, path, create=True, mode=0o755, owner=owner)
    except NotADirectoryError:
        raise CopyError(f"failed to copy files: mkdir {path}: not a directory") from None
    assert fd is not None
    return fd


def _ensure_dir(rootfs: str, path: str, owner: tuple[int, int]) -> str:
    """Host path of container dir ``path``, creating missing parts 0755 owned by ``owner``."""
    fd = _open_dir(rootfs, path, owner)
    try:
        return safepath.path_of(rootfs, fd)
    finally:
        os.close(fd)


def make_workdir(rootfs: str, path: str) -> None:
    """WORKDIR: create ``path`` root-owned 0755 if missing, through symlinks inside the rootfs."""
    try:
        fd = safepath.open_dir(rootfs, path, create=True, mode=0o755, owner=(0, 0))
    except NotADirectoryError:
        raise CopyError(f"Cannot mkdir: {path} is not a directory") from None
    assert fd is not None
    os.close(fd)


def _remove(path: str, keep_dir: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            remove_tree(path)
    else:
        os.unlink(path)


def _copy_entry(src: str, st: os.stat_result, dst: str, owner: tuple[int, int] | None, chmod: int | None,
                links: dict[tuple[int, int], str], fresh: set[str] | None = None) -> None:
    """Copy one entry; a given ``owner`` is applied by chown, which (as in docker) clears
    the set-user-ID bit and a group-executable set-group-ID bit of a non-directory.

    ``fresh`` holds the directories this copy created: nothing is in them to replace, and
    a file we create there is already ours, so those syscalls are skipped."""
    mode = st.st_mode
    perm = stat.S_IMODE(mode) if chmod is None else chmod
    if owner is None:
        owner = (st.st_uid, st.st_gid)
    elif not stat.S_ISDIR(mode) and chmod is None:
        perm &= ~stat.S_ISUID
        if perm & stat.S_IXGRP:
            perm &= ~stat.S_ISGID
    in_fresh = fresh is not None and os.path.dirname(dst) in fresh
    if stat.S_ISDIR(mode):
        if not in_fresh:
            _remove(dst, keep_dir=True)
        if in_fresh or not os.path.isdir(dst):
            os.mkdir(dst, 0o700)
            if fresh is not None:
                fresh.add(dst)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if not in_fresh:
            _remove(dst, keep_dir=False)
        if st.st_nlink > 1 and key in links:
            os.link(links[key], dst)
            return
        _clone_file(src, dst)
        if st.st_nlink > 1:
            links[key] = dst
        if in_fresh and owner == _SELF:
            os.chmod(dst, perm)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
            return
    elif stat.S_ISLNK(mode):
        _remove(dst, keep_dir=False)
        os.symlink(os.readlink(src), dst)
        os.lchown(dst, *owner)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        return
    else:
        _remove(dst, keep_dir=False)
        os.mknod(dst, stat.S_IFMT(mode) | 0o600, st.st_rdev)
    os.lchown(dst, *owner)
    os.chmod(dst, perm)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


_SELF = (os.geteuid(), os.getegid())


def _clone_file(src: str, dst: str) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fin).st_size
            copied = 0
            while copied < size:
                n = os.sendfile(fout, fin, copied, min(size - copied, 1 << 30))
                if n == 0:
                    break
                copied += n
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _write_file(path: str, data: bytes, mode: int, owner: tuple[int, int]) -> None:
    _remove(path, keep_dir=False)
    with open(path, "wb") as fh:
        fh.write(data)
    os.lchown(path, *owner)
    os.chmod(path, mode)


# --- ADD of local archives -------------------------------------------------------------

_BZIP2, _XZ = b"BZh", b"\xfd7zXZ\x00"


@contextlib.contextmanager
def _tar_stream(path: str) -> Iterator[IO[bytes]]:
    """The uncompressed stream of ``path`` (plain, gzip, bzip2, xz or zstd)."""
    from registry.layer import open_layer  # noqa: PLC0415 (only ADD needs it)

    with open(path, "rb") as fh, contextlib.ExitStack() as stack:
        head = fh.read(6)
        fh.seek(0)
        if head.startswith(_BZIP2):
            import bz2  # noqa: PLC0415
            yield stack.enter_context(bz2.BZ2File(fh))
        elif head.startswith(_XZ):
            import lzma  # noqa: PLC0415
            yield stack.enter_context(lzma.LZMAFile(fh))
        else:
            yield stack.enter_context(open_layer(fh))  # gzip, zstd or plain


def _is_archive(path: str) -> bool:
    """Docker's test: the (decompressed) file starts with a readable tar header."""
    from registry.layer.tarreader import TarReader  # noqa: PLC0415

    try:
        with _tar_stream(path) as stream:
            return next(iter(TarReader(stream, path)), None) is not None
    except (PybuildError, OSError, EOFError, ValueError):
        return False


def _try_extract(src: str, rootfs: str, dest: str) -> bool:
    """Extract ``src`` under container dir ``dest`` if it is an archive; False if not.

    The codec's extractor unpacks it with the destination as its root, as docker
    unpacks chrooted there: names and links with ``..`` or ``/`` stay inside it, and
    ``.wh.`` names are plain files (this is not a layer)."""
    if not _is_archive(src):
        return False
    from registry.layer import extract_layer  # noqa: PLC0415

    fd = _open_dir(rootfs, dest, (0, 0))
    try:
        with _tar_stream(src) as stream:
            extract_layer(stream, fd, whiteouts="none", allow_devices=True, clamp_dotdot=True,
                          name=os.path.basename(src))
    finally:
        os.close(fd)
    return True


def read_url(url: str, checksum: str | None) -> tuple[str, bytes]:
    """Download an ADD URL: ``(file name, content)``; verifies ``--checksum`` (sha256:...)."""
    import hashlib  # noqa: PLC0415
    import urllib.parse  # noqa: PLC0415

    import httpx  # noqa: PLC0415 (only builds that ADD a URL pay for it)

    try:
        resp = httpx.get(url, follow_redirects=True, timeout=60)
        resp.raise_for_status()
    except httpx.HTTPError as err:
        raise CopyError(f"ADD failed: cannot download {url}: {err}") from None
    data = resp.content
    if checksum:
        algo, _, want = checksum.partition(":")
        if algo != "sha256" or not want:
            raise CopyError(f"ADD --checksum={checksum}: only sha256:<hex> is supported")
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise CopyError(f"ADD failed: checksum of {url} is sha256:{got}, expected {checksum}")
    name = os.path.basename(urllib.parse.urlparse(url).path) or "index.html"
    return name, data


MAX_ID = 4294967294  # (uid_t)-1 is "leave unchanged" to chown(2); above it does not fit


def resolve_owner(spec: str, rootfs: str | None) -> tuple[int, int]:
    """``--chown`` value to ``(uid, gid)``, legacy rules: no group part means group = user."""
    from runner.users import read_group, read_passwd  # noqa: PLC0415

    user, sep, group = spec.partition(":")
    if not sep:
        group = user
    passwd = [(u.name, u.uid) for u in read_passwd(root=rootfs)] if rootfs else []
    groups = [(g.name, g.gid) for g in read_group(root=rootfs)] if rootfs else []
    uid = _lookup(user, passwd, "uid", "user", spec)
    gid = _lookup(group, groups, "gid", "group", spec)
    return uid, gid


def _lookup(name: str, rows: list[tuple[str, int]], what: str, kind: str, spec: str) -> int:
    if name.isascii() and name.isdigit():
        # docker 20.10 passes these on to chown(2) truncated (2^32 becomes root, 2^32-1
        # leaves the owner as is); BuildKit refuses them: so do we
        if int(name) > MAX_ID:
            raise CopyError(f"invalid --chown={spec}: {what} {name} is out of range (0 to {MAX_ID})")
        return int(name)
    for row_name, number in rows:
        if row_name == name:
            return number
    raise CopyError(f"unable to convert uid/gid chown string to host mapping: can't find {what} for "
                    f"{kind} {name}: no such {kind}: {name} (in --chown={spec})")
