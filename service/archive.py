"""``/containers/{id}/archive`` (``docker cp``): a tar of a path in a running container
(GET), its stat alone (HEAD), and a tar unpacked into a directory of it (PUT).

The container is hostile: it may plant symlinks or swap a directory for one while we
read.  Its root is taken as a directory fd (``/proc/PID/root``, checked against the
recorded start time so a reused pid is never read), the path is resolved inside it by
:mod:`base.safepath`, and the tree below is walked one entry at a time relative to its
directory's fd with ``O_NOFOLLOW``: a symlink is archived as a link, never followed, and
an entry that changes under the walk is skipped.  Writes go through the layer extractor
on a directory fd of the destination.  Stopped containers are refused (their root is not
mounted; docker can copy from them).
"""

from __future__ import annotations

import base64
import errno
import json
import os
import posixpath
import stat
import time
from typing import Iterator

from base import safepath
from registry.layer import tarformat as tf
from registry.layer.tarwriter import Segmenter
from runner import containers
from runner.containers import Container
from runner.procinfo import alive

from .http import ApiError, BodyReader, Chunked, Request

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC
STAT_HEADER = "X-Docker-Container-Path-Stat"
PIECE = 1 << 16
# Go's os.FileMode type bits, which the docker CLI reads from the stat header
_GO_TYPES = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISFIFO, 1 << 25),
             (stat.S_ISSOCK, 1 << 24), (stat.S_ISBLK, 1 << 26), (stat.S_ISCHR, (1 << 26) | (1 << 21)))
_GO_SPECIAL = ((stat.S_ISUID, 1 << 23), (stat.S_ISGID, 1 << 22), (stat.S_ISVTX, 1 << 20))


def _find(req: Request) -> Container:
    try:
        return containers.lookup(req.root, req.params[0])
    except containers.NoSuchContainer:
        raise ApiError(404, f"No such container: {req.params[0]}") from None


class _Running:
    """The running container's root as a directory fd (as its pid 1 sees it), and the host
    ids of its root user (what ``docker cp`` without ``-a`` gives the files it writes)."""

    def __init__(self, container: Container):
        pid, start = container.state.get("pid"), container.state.get("pid_start")
        if not container.running or not pid:
            raise ApiError(409, f"container {container.name} is not running: pybuild copies "
                                "only from and to running containers; start it first")
        self.fd = -1
        try:
            proc = os.open(f"/proc/{pid}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                self.owner = (_outside_zero(proc, "uid_map"), _outside_zero(proc, "gid_map"))
                self.fd = os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc)
            finally:
                os.close(proc)
        except OSError:
            pass
        if self.fd < 0 or not alive(pid, start):  # checked after the opens: they were of the right process
            self.close()
            raise ApiError(409, f"container {container.name} is not running")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _outside_zero(proc: int, name: str) -> int:
    """The host id that id 0 of the process's user namespace is (``uid_map``/``gid_map``)."""
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
    with os.fdopen(fd) as fh:
        for line in fh:
            inside, outside, count = (int(f) for f in line.split())
            if inside <= 0 < inside + count:
                return outside - inside
    raise ApiError(409, "the container's root user has no id on the host: cannot copy into it")


def _go_mode(mode: int) -> int:
    out = stat.S_IMODE(mode) & 0o777
    for test, bit in _GO_TYPES:
        if test(mode):
            out |= bit
    for bit, go in _GO_SPECIAL:
        if mode & bit:
            out |= go
    return out


def _rfc3339(st: os.stat_result) -> str:
    secs, nanos = divmod(st.st_mtime_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def _base(path: str) -> str:
    """Go's ``filepath.Base`` of the path as asked (``/etc/.`` is ``.``, ``/etc/`` is ``etc``)."""
    stripped = path.rstrip("/")
    return posixpath.basename(stripped) if stripped else "/"


class _Source:
    """The asked path inside the container: its parent's fd and its name there (or, where
    the path says to follow its last symlink, an fd of what it names)."""

    def __init__(self, rootfd: int, path: str, cname: str):
        self.path = path
        missing = ApiError(404, f"Could not find the file {path} in container {cname}")
        follow = path.rstrip("/") == "" or path.endswith("/") or path.endswith("/.") or path == "."
        self.parent = -1
        self.name = b"."
        try:
            if follow:  # the entry is what the path names, resolved inside the root
                self.parent = safepath.open_in_root(rootfd, path, os.O_PATH)
                st: os.stat_result | None = os.stat(self.parent)
            else:
                parent_path, self.name = posixpath.split(os.fsencode(path.rstrip("/")))
                fd = safepath.open_dir(rootfd, parent_path or b"/")
                if fd is None:
                    raise missing
                self.parent = fd
                st = safepath.lstat_at(self.name, fd)
        except (FileNotFoundError, NotADirectoryError):
            raise missing from None
        except OSError as err:
            raise ApiError(500, f"cannot read {path} in container {cname}: {err.strerror}") from None
        if st is None:
            self.close()
            raise missing
        self.stat = st
        self.link_target = ""
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(self.name, dir_fd=self.parent).decode(errors="surrogateescape")
            where = posixpath.dirname("/" + path.strip("/"))
            self.link_target = posixpath.normpath(posixpath.join(where, target))

    def close(self) -> None:
        if self.parent >= 0:
            os.close(self.parent)
            self.parent = -1

    def header(self) -> str:
        info = {"name": _base(self.path), "size": self.stat.st_size, "mode": _go_mode(self.stat.st_mode),
                "mtime": _rfc3339(self.stat), "linkTarget": self.link_target}
        return base64.b64encode(json.dumps(info).encode()).decode()


def _names(dirfd: int) -> Iterator[bytes]:
    """A directory's names, sorted bytewise (read through its fd, never a path)."""
    return iter(sorted(os.fsencode(n) for n in os.listdir(dirfd)))


class _FdTree:
    """Tar entries of a tree, every entry opened relative to its directory's fd."""

    def __init__(self, out: Segmenter):
        self.out = out
        self.links: dict[tuple[int, int], bytes] = {}

    def _header(self, name: bytes, st: os.stat_result, typeflag: bytes, size: int = 0, linkname: bytes = b"") -> None:
        rdev = st.st_rdev if typeflag in (tf.CHARDEV, tf.BLOCKDEV) else 0
        mode = stat.S_IMODE(st.st_mode) | stat.S_IFMT(st.st_mode)  # with the type bits, as docker's headers
        self.out.write(tf.header(name, mode, st.st_uid, st.st_gid, size,
                                 max(int(st.st_mtime), 0), typeflag, linkname, os.major(rdev), os.minor(rdev)))

    def write(self, dirfd: int, name: bytes, arcname: bytes) -> None:
        """``name`` in ``dirfd`` (``.`` for ``dirfd`` itself) and all below it."""
        pending: list[tuple[int, Iterator[bytes], bytes]] = []
        sub = self.entry(dirfd, name, arcname)
        if sub is not None:
            pending.append((sub, _names(sub), arcname))
        try:
            while pending:
                fd, names, prefix = pending[-1]
                child = next(names, None)
                if child is None:
                    os.close(fd)
                    pending.pop()
                    continue
                arc = prefix + b"/" + child
                sub = self.entry(fd, child, arc)
                if sub is not None:
                    pending.append((sub, _names(sub), arc))
        finally:
            for fd, _rest, _prefix in pending:
                os.close(fd)
        self.out.write(tf.ZERO_BLOCK * 2)

    def entry(self, dirfd: int, name: bytes, arc: bytes) -> int | None:
        """Write one entry; the fd of a directory, whose entries come next."""
        st = safepath.lstat_at(name, dirfd) if name != b"." else os.stat(dirfd)
        if st is None:
            return None  # gone meanwhile
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=dirfd) if name != b"." else _reopen_dir(dirfd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    return None  # swapped for something else under the walk
                raise
            self._header(arc + b"/", os.fstat(fd), tf.DIRECTORY)
            return fd
        if stat.S_ISREG(mode):
            self._file(dirfd, name, arc, st)
        elif stat.S_ISLNK(mode):
            self._header(arc, st, tf.SYMLINK, linkname=os.readlink(name, dir_fd=dirfd))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            self._header(arc, st, tf.CHARDEV if stat.S_ISCHR(mode) else tf.BLOCKDEV)
        elif stat.S_ISFIFO(mode):
            self._header(arc, st, tf.FIFO)
        return None

    def _file(self, dirfd: int, name: bytes, arc: bytes, st: os.stat_result) -> None:
        fd = _open_regular(dirfd, name)
        if fd is None:
            return  # no longer a regular file: swapped under the walk
        try:
            st = os.fstat(fd)
            if st.st_nlink > 1:
                first = self.links.get((st.st_dev, st.st_ino))
                if first is not None:
                    self._header(arc, st, tf.HARDLINK, linkname=first)
                    return
                self.links[(st.st_dev, st.st_ino)] = arc
            size = st.st_size
            self._header(arc, st, tf.REGULAR, size=size)
            got = self.out.copy_from(lambda view: os.readv(fd, [view]), size)
        finally:
            os.close(fd)
        self.out.write_zeros(size - got + tf.padding(size))  # a file that shrank is padded


def _open_regular(dirfd: int, name: bytes) -> int | None:
    """A readable fd of ``name`` in ``dirfd`` (``.``: ``dirfd`` itself, an ``O_PATH`` fd) if it
    is a regular file, else None.  Opened as ``O_PATH`` first and checked: the container may
    swap in a device node it made, whose open the host must never run."""
    try:
        where = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd) if name != b"." \
            else os.dup(dirfd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(where).st_mode):
            return None
        return os.open(f"/proc/self/fd/{where}", FILE_FLAGS)  # the same inode, checked above
    finally:
        os.close(where)


def _reopen_dir(opath: int) -> int:
    """A readable fd of the directory an ``O_PATH`` fd names (no path lookup)."""
    return os.open(".", DIR_FLAGS, dir_fd=opath)


def head(req: Request) -> None:
    """``HEAD``: the stat header alone."""
    container = _find(req)
    running = _Running(container)
    try:
        source = _Source(running.fd, _path_arg(req), container.name)
        source.close()
    finally:
        running.close()
    req.send(200, b"", "application/x-tar", headers={STAT_HEADER: source.header()})


def get(req: Request) -> None:
    """``GET``: the tar of the path, its top entry named as the path's last component."""
    if req.handler.command == "HEAD":
        head(req)
        return
    container = _find(req)
    running = _Running(container)
    try:
        source = _Source(running.fd, _path_arg(req), container.name)
        try:
            h = req.handler
            h.send_response(200)
            h.send_header("Content-Type", "application/x-tar")
            h.send_header(STAT_HEADER, source.header())
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            req.answered = True
            body = Chunked(h.wfile)
            out = Segmenter(lambda buf: body.write(bytes(buf)), PIECE)
            top = _base(source.path)
            _FdTree(out).write(source.parent, source.name, os.fsencode("." if top == "/" else top))
            out.close()
            body.close()
        finally:
            source.close()
    finally:
        running.close()


def put(req: Request) -> None:
    """``PUT``: the body's tar (maybe compressed) unpacked into the existing directory ``path``."""
    body = BodyReader(req.body_chunks())
    try:
        _unpack(req, body)
    finally:
        body.drain()  # also after a refusal, so that the client reads it instead of a broken pipe
    req.send(200, b"", "text/plain")


def _unpack(req: Request, body: BodyReader) -> None:
    from registry.layer.extract import extract_layer
    from registry.layer.stream import open_layer

    container = _find(req)
    path = _path_arg(req)
    running = _Running(container)
    try:
        try:
            target = safepath.open_dir(running.fd, path)
        except NotADirectoryError:
            raise ApiError(400, f"extraction point is not a directory: {path}") from None
        if target is None:
            raise ApiError(404, f"Could not find the file {path} in container {container.name}")
        try:
            extract_layer(open_layer(body), target, whiteouts="none",
                          name=f"archive for {container.name}:{path}", clamp_dotdot=True,
                          owner=None if req.flag("copyUIDGID") else running.owner,
                          keep_kinds=req.flag("noOverwriteDirNonDir"))
        finally:
            os.close(target)
    finally:
        running.close()


def _path_arg(req: Request) -> str:
    path = req.arg("path")
    if not path:
        raise ApiError(400, "path is required")
    return path if path.startswith("/") else "/" + path


ROUTES = [
    ("GET", r"/containers/([^/]+)/archive", get),
    ("PUT", r"/containers/([^/]+)/archive", put),
]
