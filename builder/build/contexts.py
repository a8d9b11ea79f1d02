"""Build contexts that are not a directory: a tar (plain, gz, bz2, xz, zst) on stdin or in a
file, an http(s) URL of a tarball, a git repository URL (``#ref:subdir``).

Each becomes a private directory under ``$ROOT/tmp`` that the build reads as usual and
removes at the end.  Tarballs are hostile input: they go through the layer codec's
extractor (no path escapes, no devices, links kept inside), never ``tarfile``.  A
stream that is not an archive is a Dockerfile with no context, as docker reads it.
"""

from __future__ import annotations

import bz2
import lzma
import os
import shutil
import subprocess
from typing import IO

from base.removal import remove_tree
from registry.errors import PybuildError

MAX_DOWNLOAD = 4 << 30


class ContextError(PybuildError):
    """The context could not be read."""


def is_remote(text: str) -> bool:
    """http(s) and git URLs (docker's rules: ``git://``, ``git@``, ``*.git`` or ``#fragment`` on http)."""
    return text.startswith(("http://", "https://", "git://", "git@", "ssh://"))


def is_git(text: str) -> bool:
    if text.startswith(("git://", "git@", "ssh://")):
        return True
    url = text.split("#", 1)[0]
    return text.startswith(("http://", "https://")) and (url.endswith(".git") or "#" in text)


def archive_kind(head: bytes) -> str | None:
    """``tar``, ``gzip``, ``bzip2``, ``xz``, ``zstd``, or None (not an archive: a Dockerfile)."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def unpack(stream: IO[bytes], kind: str, target: str) -> None:
    """Extract a (compressed) tar into ``target`` with the hostile-input extractor."""
    from registry.errors import BadArchive  # noqa: PLC0415
    from registry.layer.extract import extract_layer  # noqa: PLC0415
    from registry.layer.stream import open_layer  # noqa: PLC0415

    try:
        if kind == "bzip2":
            with bz2.open(stream, "rb") as plain:
                extract_layer(plain, target, whiteouts="apply", name="context")
        elif kind == "xz":
            with lzma.open(stream, "rb") as plain:
                extract_layer(plain, target, whiteouts="apply", name="context")
        else:
            with open_layer(stream) as plain:
                extract_layer(plain, target, whiteouts="apply", name="context")
    except (BadArchive, OSError, EOFError, lzma.LZMAError) as err:
        raise ContextError(f"the context is not a readable {kind} archive: {err}") from None


class _Head:
    """A stream with its first bytes read ahead (to sniff the kind) and put back."""

    def __init__(self, stream: IO[bytes], size: int = 512):
        self.stream = stream
        self.head = b""
        while len(self.head) < size and (more := stream.read(size - len(self.head))):
            self.head += more
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if self._pos < len(self.head):
            end = len(self.head) if size < 0 else min(len(self.head), self._pos + size)
            out = self.head[self._pos:end]
            self._pos = end
            if size < 0:
                out += self.stream.read()
            return out
        return self.stream.read(size)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


def from_stream(stream: IO[bytes], target: str) -> bytes | None:
    """Unpack an archive from ``stream`` into ``target``; return the bytes instead when it
    is not an archive (a Dockerfile)."""
    head = _Head(stream)
    kind = archive_kind(head.head)
    if kind is None:
        return head.read()
    unpack(head, kind, target)  # type: ignore[arg-type]
    return None


def fetch_url(url: str, target: str, insecure_ok: bool = True) -> bytes | None:
    """Download ``url``: a tarball is unpacked into ``target``; other content is returned (a Dockerfile)."""
    import httpx  # noqa: PLC0415

    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as response:
            if response.status_code != 200:
                raise ContextError(f"downloading the context {url}: HTTP {response.status_code}")
            return from_stream(_Iter(response.iter_bytes()), target)  # type: ignore[arg-type]
    except httpx.HTTPError as err:
        raise ContextError(f"downloading the context {url}: {err}") from None


class _Iter:
    """A file-like reader over an iterator of byte chunks (capped at MAX_DOWNLOAD)."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.buffer = b""
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.total += len(chunk)
            if self.total > MAX_DOWNLOAD:
                raise ContextError("the context download is larger than 4 GiB")
            self.buffer += chunk
        if size < 0:
            out, self.buffer = self.buffer, b""
        else:
            out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


def clone_git(url: str, target: str) -> str:
    """Clone ``URL[#REF[:SUBDIR]]`` with the git CLI; return the context dir (the subdir)."""
    repo, _, fragment = url.partition("#")
    ref, _, subdir = fragment.partition(":")
    # no prompts; GIT_PROTOCOL_FROM_USER=0 keeps a hostile repository's submodules from using
    # file:// or ext:: (which would read the host's repositories or run commands)
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PROTOCOL_FROM_USER": "0"}

    def git(*args: str) -> None:
        proc = subprocess.run(["git", *args], cwd=target, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0:
            message = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            raise ContextError(f"git {args[0]} {repo}: {message}")

    if shutil.which("git") is None:
        raise ContextError("git URL contexts need the git command; install git")
    os.makedirs(target, exist_ok=True)
    git("init", "-q", ".")
    git("remote", "add", "origin", repo)
    git("fetch", "-q", "--depth", "1", "origin", ref or "HEAD")
    git("checkout", "-q", "FETCH_HEAD")
    git("submodule", "update", "-q", "--init", "--recursive", "--depth", "1")
    remove_tree(os.path.join(target, ".git"), ignore_errors=True)
    if not subdir:
        return target
    from base import safepath  # noqa: PLC0415
    try:
        path = safepath.resolve(target, subdir)
    except OSError:  # a file on the way
        raise ContextError(f"{url}: {subdir} is not a directory in the repository") from None
    if not os.path.isdir(path):
        raise ContextError(f"{url}: {subdir} is not a directory in the repository")
    return path


def materialize(spec: str, root: str, stdin: IO[bytes]) -> tuple[str, bytes | None, str]:
    """``(context dir or "", Dockerfile bytes if the input was one, scratch dir to remove)`` for a
    CONTEXT argument that is ``-``, a tarball file or a URL."""
    import secrets  # noqa: PLC0415

    scratch = os.path.join(root, "tmp", f"context-{os.getpid()}-{secrets.token_hex(4)}")
    target = os.path.join(scratch, "ctx")
    os.makedirs(target)
    try:
        if spec == "-":
            text = from_stream(stdin, target)
        elif is_git(spec):
            return clone_git(spec, target), None, scratch
        elif is_remote(spec):
            text = fetch_url(spec, target)
        else:
            try:
                with open(spec, "rb") as fh:
                    head = _Head(fh)
                    kind = archive_kind(head.head)
                    if kind is None:
                        raise ContextError(f"context {spec!r} is neither a directory nor a tar archive")
                    unpack(head, kind, target)  # type: ignore[arg-type]
            except FileNotFoundError:
                raise ContextError(f"context {spec!r} does not exist") from None
            text = None
    except BaseException:
        remove_tree(scratch, ignore_errors=True)
        raise
    return ("" if text is not None else target), text, scratch
