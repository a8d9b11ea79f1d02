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
and downloads URLs (0600, ``--checksum`` verified).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from registry.errors import PybuildError
from runner.rootfs import resolve_in_root

from .copy_step import absolute_dest


class CopyError(PybuildError):
    """A COPY/ADD that cannot be carried out."""


@dataclass
class CopyRequest:
    """One COPY/ADD with its sources already resolved to paths relative to ``tree``."""

    tree: object  # a builder.build.context.Context (the build context or a stage's rootfs)
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
    dest_host = resolve_in_root(rootfs, dest)
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


def _file_dest(rootfs: str, dest: str, dest_is_dir: bool, name: str, owner: tuple[int, int]) -> str:
    """Host path a file source goes to; like docker, an existing symlink there is followed
    (inside the rootfs), so the file lands at the link's target."""
    if dest_is_dir:
        _ensure_dir(rootfs, dest, owner)
        path = os.path.join(dest, name)
    else:
        path = dest.rstrip("/")
        _ensure_dir(rootfs, os.path.dirname(path) or "/", owner)
    return resolve_in_root(rootfs, path)


def _ensure_dir(rootfs: str, path: str, owner: tuple[int, int]) -> str:
    """Host path of container dir ``path``, creating missing parts 0755 owned by ``owner``."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        host = resolve_in_root(rootfs, current)
        if os.path.isdir(host):
            continue
        if os.path.lexists(host):
            raise CopyError(f"failed to copy files: mkdir {current}: not a directory")
        os.mkdir(host, 0o755)
        os.chmod(host, 0o755)
        os.lchown(host, *owner)
    return resolve_in_root(rootfs, path)


def _remove(path: str, keep_dir: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            shutil.rmtree(path)
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

_MAGIC = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zst"))


def _open_archive(path: str):
    """A tar reader for ``path`` if it is a (possibly compressed) tar archive, else None."""
    import tarfile  # noqa: PLC0415 (only ADD needs it)

    with open(path, "rb") as fh:
        head = fh.read(6)
    kind = next((k for magic, k in _MAGIC if head.startswith(magic)), None)
    try:
        if kind == "zst":
            import zstandard  # noqa: PLC0415 (only for zstd archives)
            fobj = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))
            tar = tarfile.open(fileobj=fobj, mode="r|")
        else:
            tar = tarfile.open(path, mode=f"r:{kind}" if kind else "r:")
        return tar
    except (tarfile.TarError, OSError, EOFError, ImportError):
        return None


def _try_extract(src: str, rootfs: str, dest: str) -> bool:
    """Extract ``src`` under container dir ``dest`` if it is an archive; False if not."""
    import tarfile  # noqa: PLC0415

    tar = _open_archive(src)
    if tar is None:
        return False
    with tar:
        try:
            first = tar.next()
        except tarfile.TarError:
            return False
        if first is None:
            return True
        _ensure_dir(rootfs, dest, (0, 0))
        extract_members(_chain(first, tar), tar, rootfs, dest)
    return True


def _chain(first, tar) -> Iterator:
    yield first
    while (member := tar.next()) is not None:
        yield member


def extract_members(members, tar, rootfs: str, dest: str) -> None:
    """Write tar ``members`` under container dir ``dest``; nothing escapes ``rootfs``."""
    for m in members:
        name = os.path.normpath("/" + m.name).lstrip("/")
        if name in ("", "."):
            continue
        parent = _ensure_dir(rootfs, os.path.join(dest, os.path.dirname(name)), (0, 0))
        path = os.path.join(parent, os.path.basename(name))
        if m.isdir():
            _remove(path, keep_dir=True)
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
        elif m.isreg():
            _remove(path, keep_dir=False)
            with open(path, "wb") as out:
                shutil.copyfileobj(tar.extractfile(m), out, 1 << 20)
        elif m.issym():
            _remove(path, keep_dir=False)
            os.symlink(m.linkname, path)
        elif m.islnk():
            target = resolve_in_root(rootfs, os.path.join(dest, os.path.normpath("/" + m.linkname).lstrip("/")))
            _remove(path, keep_dir=False)
            os.link(target, path)
            continue
        elif m.isfifo() or m.ischr() or m.isblk():
            _remove(path, keep_dir=False)
            kind = stat.S_IFIFO if m.isfifo() else stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        else:
            continue
        os.lchown(path, m.uid, m.gid)
        if not m.issym():
            os.chmod(path, m.mode & 0o7777)
            os.utime(path, (m.mtime, m.mtime))


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


def resolve_owner(spec: str, rootfs: str | None) -> tuple[int, int]:
    """``--chown`` value to ``(uid, gid)``, legacy rules: no group part means group = user."""
    user, sep, group = spec.partition(":")
    if not sep:
        group = user
    passwd = _read_db(rootfs, "/etc/passwd")
    groups = _read_db(rootfs, "/etc/group")
    uid = _lookup(user, passwd, "uid", "user", spec)
    gid = _lookup(group, groups, "gid", "group", spec)
    return uid, gid


def _lookup(name: str, rows: list[list[str]], what: str, kind: str, spec: str) -> int:
    if name.isdigit():
        return int(name)
    for row in rows:
        if row[0] == name and row[2].isdigit():
            return int(row[2])
    raise CopyError(f"unable to convert uid/gid chown string to host mapping: can't find {what} for "
                    f"{kind} {name}: no such {kind}: {name} (in --chown={spec})")


def _read_db(rootfs: str | None, path: str) -> list[list[str]]:
    if rootfs is None:
        return []
    try:
        with open(resolve_in_root(rootfs, path), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line.count(":") >= 2]
