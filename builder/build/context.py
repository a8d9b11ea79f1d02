"""The build context: a directory seen through ``.dockerignore``, and source checksums.

Checksums cover what a COPY can observe (relative paths, types, permission bits, link
targets, hard-link structure and file content), never mtimes or owners.  File content
hashes are remembered in ``$ROOT/cache/hashes/`` by (device, inode, size, mtime, ctime),
so a rebuild stats files instead of reading them, and a file whose mtime alone
changed is re-read, hashes the same, and keeps the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from registry.errors import PybuildError

IgnoreFn = Callable[[str, bool], bool]  # (relative path, is_dir) -> excluded


class SourceError(PybuildError):
    """A COPY/ADD source is missing, excluded or outside the context."""


class HashCache:
    """Content hashes of files keyed by path, valid while their stat fingerprint holds."""

    def __init__(self, path: str | os.PathLike[str] | None):
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, list] = {}
        self.dirty = False
        if path is not None:
            try:
                self.entries = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                self.entries = {}

    def file_hash(self, path: str, st: os.stat_result) -> str:
        """sha256 of the file's content, from the cache when its fingerprint matches."""
        key = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        hit = self.entries.get(path)
        if hit is not None and hit[:5] == key:
            return hit[5]
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        value = digest.hexdigest()
        self.entries[path] = key + [value]
        self.dirty = True
        return value

    def save(self) -> None:
        """Write the cache back (atomically) if anything changed."""
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(self.entries, separators=(",", ":")))
        os.replace(tmp, self.path)
        self.dirty = False


def go_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match`` on one path component (what docker's COPY wildcards use):
    ``*``, ``?``, ``[a-z]``, ``[^a-z]`` (``!`` is not a negation), ``\\`` escapes."""
    return _go_regex(pattern).fullmatch(name) is not None


@functools.lru_cache(maxsize=256)
def _go_regex(pattern: str) -> "re.Pattern[str]":
    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end, body = i, ["^"] if i < n and pattern[i] == "^" else []
            end += len(body)
            while end < n and pattern[end] != "]":
                if pattern[end] == "\\" and end + 1 < n:
                    end += 1
                body.append(re.escape(pattern[end]) if pattern[end] != "-" else "-")
                end += 1
            if end >= n or len(body) == (1 if body[:1] == ["^"] else 0):
                return re.compile(r"(?!)")  # malformed: Go reports ErrBadPattern, nothing matches
            out.append("[" + "".join(body) + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.S)


class Context:
    """A build context directory; ``ignored(rel, is_dir)`` applies ``.dockerignore``."""

    def __init__(self, root: str | os.PathLike[str], ignored: IgnoreFn | None = None,
                 hashes: HashCache | None = None, stage: bool = False):
        self.root = os.path.abspath(root)
        self.stage = stage  # a COPY --from source, not the build context (docker's messages differ)
        self.ignored = ignored or (lambda rel, is_dir: False)
        self.hashes = hashes or HashCache(None)

    # -- resolving sources ----------------------------------------------------------
    def resolve(self, source: str, allow_empty: bool = False) -> list[str]:
        """Relative paths a COPY source names (wildcards expanded), sorted.

        Raises :class:`SourceError` when it escapes the context or matches nothing (a
        wildcard may match nothing with ``allow_empty``: docker only fails when all the
        sources of a COPY together match nothing).
        """
        clean = os.path.normpath("/" + source).lstrip("/")
        if _escapes(source):
            raise SourceError(f"COPY failed: forbidden path outside the build context: {source}")
        if clean in ("", "."):
            return [""]
        if not _has_magic(clean):
            if not self._visible(clean):
                if self.stage:
                    raise SourceError(f"COPY failed: stat {clean}: file does not exist")
                raise SourceError(f"COPY failed: file not found in build context or excluded by "
                                  f".dockerignore: stat {source}: file does not exist")
            return [clean]
        matches = sorted(self._glob(clean.split("/"), ""))
        if not matches and not allow_empty:
            raise SourceError(f"COPY failed: no source files were specified (no match for {source})")
        return matches

    def host_path(self, rel: str) -> str:
        """Where ``rel`` is on the host, symlinks followed as if the context were ``/``."""
        if not rel:
            return self.root
        plain = os.path.normpath(os.path.join(self.root, rel))
        if os.path.realpath(plain) == plain:  # no symlink on the way: nothing to scope
            return plain
        from base.safepath import resolve  # noqa: PLC0415 (not on the cached path)

        return resolve(self.root, rel)

    def _visible(self, rel: str) -> bool:
        try:
            st = os.lstat(self.host_path(rel))
        except OSError:
            return False
        if stat.S_ISDIR(st.st_mode):
            return not self.ignored(rel, True) or any(True for _ in self.walk(rel))
        return not self.ignored(rel, False)

    def _glob(self, parts: list[str], prefix: str) -> Iterator[str]:
        head, rest = parts[0], parts[1:]
        base = self.host_path(prefix.rstrip("/"))
        try:
            names = os.listdir(base)
        except OSError:
            return
        for name in names:
            if not go_match(head, name):
                continue
            rel = f"{prefix}{name}"
            if rest:
                yield from self._glob(rest, rel + "/")
            elif self._visible(rel):
                yield rel

    # -- walking --------------------------------------------------------------------
    def walk(self, rel: str, base: str | None = None) -> Iterator[tuple[str, os.stat_result, str]]:
        """Visible entries under directory ``rel`` (not itself), parents before children,
        as ``(relative path, lstat, host path)``; nothing below ``rel`` is followed."""
        if base is None:
            base = self.host_path(rel)
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            st = entry.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.ignored(child, is_dir):
                if is_dir:  # an exception may re-include something below
                    below = list(self.walk(child, entry.path))
                    if below:
                        yield child, st, entry.path
                        yield from below
                continue
            yield child, st, entry.path
            if is_dir:
                yield from self.walk(child, entry.path)

    # -- checksums ------------------------------------------------------------------
    def checksum(self, rel: str, follow: bool = True) -> str:
        """Checksum of a source: content and metadata of it and everything below it."""
        full = self.host_path(rel)
        st = os.stat(full) if follow else os.lstat(full)
        h = hashlib.sha256()
        inodes: dict[tuple[int, int], str] = {}
        self._entry_digest(h, ".", full, st, inodes)
        if stat.S_ISDIR(st.st_mode):
            for child, cst, host in self.walk(rel, full):
                self._entry_digest(h, child[len(rel):].lstrip("/"), host, cst, inodes)
        return h.hexdigest()

    def _entry_digest(self, h, name: str, full: str, st: os.stat_result, inodes: dict) -> None:
        mode = st.st_mode
        line = f"{name}\0{stat.S_IFMT(mode)}\0{stat.S_IMODE(mode)}\0"
        if stat.S_ISREG(mode):
            if st.st_nlink > 1:
                first = inodes.setdefault((st.st_dev, st.st_ino), name)
                line += f"link={first}\0"
            line += self.hashes.file_hash(full, st)
        elif stat.S_ISLNK(mode):
            line += os.readlink(full)
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _escapes(source: str) -> bool:
    depth = 0
    for part in source.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False
