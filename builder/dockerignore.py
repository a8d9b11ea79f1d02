"""``.dockerignore``: which context files a build may see, with docker's rules.

File format (docker's ``ReadAll``): one pattern a line; a line starting with
``#`` (first column) is a comment; blanks around a pattern are dropped; the
path is cleaned (``./a//b/`` -> ``a/b``, a leading ``/`` removed); ``!``
makes an exception that re-includes what it matches. Later lines win.

Matching (moby/patternmatcher): ``*`` any run of non-``/``, ``?`` one
non-``/``, ``[a-z]`` classes, ``\\`` escapes, ``**`` any number of directories
(``**/x``, ``a/**``, ``a/**/b``).

Verdicts (the docker CLI's context walk, moby/patternmatcher's
``MatchesUsingParentResults``): a pattern matches an entry if it matches its
path or matched its parent directory; patterns apply in order, the last match
wins (``!`` re-includes), and a pattern is not tried where it could not change
the verdict, so it does not carry down from a parent where it was not tried.
An excluded directory is skipped whole unless an exception pattern starts with
that directory's path; then the walk goes in (the directory entry itself stays
excluded) and judges each entry. :meth:`DockerIgnore.excluded` gives the same verdict for any path
without walking, and :meth:`DockerIgnore.walk` walks a context fast.

The Dockerfile and the ignore file are subject to the patterns like any file
(docker sends them, then drops them from the context when they match).
``<Dockerfile>.dockerignore`` beside the Dockerfile, when present, is used
instead of ``<context>/.dockerignore`` (BuildKit's rule).
"""

from __future__ import annotations

import os
import posixpath
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from registry.errors import PybuildError

__all__ = ["DockerIgnore", "DockerIgnoreError", "read_patterns", "find_ignore_file", "load"]

_ESCAPE = frozenset(".+()|{}$")


class DockerIgnoreError(PybuildError):
    """A ``.dockerignore`` pattern docker rejects."""


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, cleaned like docker does."""
    if text.startswith("\ufeff"):
        text = text[1:]
    patterns: list[str] = []
    for raw in text.split("\n"):
        raw = raw.rstrip("\r")
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if pattern.startswith("//"):
                pattern = "/" + pattern.lstrip("/")
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


class _Pattern:
    __slots__ = ("text", "exclusion", "dirs", "kind", "regex")

    def __init__(self, text: str, exclusion: bool) -> None:
        self.text = text
        self.exclusion = exclusion
        self.dirs = text.split("/")
        self.kind, self.regex = _compile(text)

    def match(self, path: str) -> bool:
        kind = self.kind
        if kind == "exact":
            return path == self.text
        if kind == "prefix":
            return path.startswith(self.text[:-2])
        if kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        return self.regex.fullmatch(path) is not None  # type: ignore[union-attr]


def _compile(pattern: str) -> tuple[str, re.Pattern | None]:
    """(match kind, regex) for a cleaned pattern, as patternmatcher compiles it."""
    out: list[str] = []
    kind = "exact"
    i, n = 0, len(pattern)
    first = True
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out.append(".*")
                        kind = "regexp"
                else:
                    out.append("(.*/)?")
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                out.append("[^/]*")
                kind = "regexp"
        elif ch == "?":
            out.append("[^/]")
            kind = "regexp"
        elif ch in _ESCAPE:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + pattern[i])
                i += 1
                kind = "regexp"
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regexp"
        else:
            out.append(ch)
        first = False
    regex = None
    if kind == "regexp":
        try:
            with warnings.catch_warnings():  # "possible nested set" for '[[': literal today, as in Go
                warnings.simplefilter("ignore", FutureWarning)
                regex = re.compile("".join(out), re.S)
        except re.error:
            raise DockerIgnoreError(f"syntax error in .dockerignore pattern {pattern!r}") from None
    return kind, regex


class DockerIgnore:
    """A compiled list of ``.dockerignore`` patterns (empty: nothing excluded)."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns: list[_Pattern] = []
        for p in patterns:
            p = p.strip()
            if not p:
                continue
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise DockerIgnoreError('illegal exclusion pattern: "!"')
                p = p[1:]
            self.patterns.append(_Pattern(posixpath.normpath(p), exclusion))
        self._exception_prefixes = tuple(p.text + "/" for p in self.patterns if p.exclusion)

    @classmethod
    def from_text(cls, text: str) -> DockerIgnore:
        """Patterns from the text of a ``.dockerignore`` file."""
        return cls(read_patterns(text))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def _evaluate(self, path: str, parent: tuple[bool, ...] | None) -> tuple[bool, tuple[bool, ...]]:
        """(excluded, which patterns matched ``path`` or an ancestor), given the parent's answer.

        patternmatcher's ``MatchesUsingParentResults``: a pattern that matched
        the parent matches the child; the others are tried on the child's own
        path, in order, skipping those that could not change the verdict (an
        exclusion while not excluded, an inclusion while excluded); the last
        match wins. ``parent`` None: a top-level entry.
        """
        excluded = False
        matched = [False] * len(self.patterns)
        for i, p in enumerate(self.patterns):
            hit = parent[i] if parent is not None else False
            if not hit:
                if p.exclusion != excluded:
                    continue
                hit = p.match(path)
            matched[i] = hit
            if hit:
                excluded = not p.exclusion
        return excluded, tuple(matched)

    def _pruned(self, directory: str) -> bool:
        """Whether the walk skips an excluded ``directory`` without looking inside."""
        prefix = directory + "/"
        return not any(e.startswith(prefix) for e in self._exception_prefixes)

    def _chain(self, relpath: str) -> tuple[str, bool, bool]:
        """(clean path, whether it is excluded, whether an ancestor was pruned)."""
        path = posixpath.normpath(relpath.replace(os.sep, "/")).lstrip("/")
        if path in ("", ".") or not self.patterns:
            return path, False, False
        parts = path.split("/")
        info = None
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            excluded, info = self._evaluate(ancestor, info)
            if excluded and self._pruned(ancestor):
                return path, True, True
        return path, self._evaluate(path, info)[0], False

    def excluded(self, relpath: str, is_dir: bool = False) -> bool:
        """Whether the context entry at ``relpath`` (``/``-separated) is left out."""
        return self._chain(relpath)[1]

    def can_skip_dir(self, relpath: str) -> bool:
        """True when the directory and everything under it is excluded (no exception reaches in)."""
        path, excluded, pruned_above = self._chain(relpath)
        return excluded and (pruned_above or self._pruned(path))

    def walk(self, root: str | os.PathLike) -> Iterator[tuple[str, os.DirEntry]]:
        """Included entries under ``root`` as (relative path, DirEntry), parents first.

        Symlinks are reported, not followed. An excluded directory the walk
        must enter (an exception lies below it) is not reported itself.
        """
        stack: list[tuple[str, str, tuple[bool, ...] | None]] = [(os.fspath(root), "", None)]
        while stack:
            top, prefix, parent = stack.pop()
            with os.scandir(top) as it:
                entries = sorted(it, key=lambda e: e.name)
            subdirs = []
            for entry in entries:
                rel = prefix + entry.name
                is_dir = entry.is_dir(follow_symlinks=False)
                excluded, info = self._evaluate(rel, parent) if self.patterns else (False, ())
                if excluded:
                    if is_dir and not self._pruned(rel):
                        subdirs.append((entry.path, rel + "/", info))
                    continue
                yield rel, entry
                if is_dir:
                    subdirs.append((entry.path, rel + "/", info))
            stack.extend(reversed(subdirs))


def find_ignore_file(context: str | os.PathLike, dockerfile: str | os.PathLike | None = None) -> Path | None:
    """``<dockerfile>.dockerignore`` if it exists, else ``<context>/.dockerignore`` if it exists."""
    if dockerfile is not None:
        specific = Path(os.fspath(dockerfile) + ".dockerignore")
        if specific.is_file():
            return specific
    generic = Path(context) / ".dockerignore"
    return generic if generic.is_file() else None


def load(context: str | os.PathLike, dockerfile: str | os.PathLike | None = None) -> DockerIgnore:
    """The ignore rules for a build context (empty when there is no ignore file)."""
    path = find_ignore_file(context, dockerfile)
    if path is None:
        return DockerIgnore()
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        return DockerIgnore.from_text(text)
    except DockerIgnoreError as err:
        raise DockerIgnoreError(f"{path}: {err}") from None
