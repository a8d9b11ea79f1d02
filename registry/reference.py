r"""Image references with Docker's normalisation.

``busybox`` is ``docker.io/library/busybox:latest``; ``localhost:5000/app`` keeps
its registry; ``name@sha256:...`` pins a digest.  :func:`parse` rejects what docker
rejects (upper-case repositories, empty components, bad tags, anything not ASCII:
docker's grammar is Go regexps, whose ``\w`` and classes are ASCII) with a clear message.
"""

from __future__ import annotations

import re

from .errors import InvalidReference

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_REGISTRIES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)  # Go's \w: ASCII only
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)


class Reference:
    """A normalised image reference: registry host, repository path, tag and/or digest (immutable)."""

    __slots__ = ("registry", "repository", "tag", "digest")
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def __init__(self, registry: str, repository: str, tag: str | None = None, digest: str | None = None):
        set_ = object.__setattr__
        set_(self, "registry", registry)
        set_(self, "repository", repository)
        set_(self, "tag", tag)
        set_(self, "digest", digest)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Reference is immutable")

    def _key(self) -> tuple[str, str, str | None, str | None]:
        return (self.registry, self.repository, self.tag, self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Reference({self.registry!r}, {self.repository!r}, tag={self.tag!r}, digest={self.digest!r})"

    @property
    def name(self) -> str:
        """``registry/repository`` (fully qualified, no tag or digest)."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The repository as docker shows it: ``busybox``, ``user/app``, ``host:5000/app``."""
        if self.registry == DEFAULT_REGISTRY:
            repo = self.repository
            return repo[len("library/"):] if repo.startswith("library/") and repo.count("/") == 1 else repo
        return self.name

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        """The short form docker prints, e.g. ``busybox:latest``."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def with_tag(self, tag: str) -> "Reference":
        """The same repository with another tag (and no digest)."""
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> "Reference":
        """The same repository pinned to ``digest`` (and no tag)."""
        return Reference(self.registry, self.repository, None, digest)


def is_digest(text: str) -> bool:
    """True when ``text`` is a ``sha256:<64 hex>`` digest."""
    return bool(_SHA256.match(text))


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise an image reference the way docker does.

    With ``default_tag`` a reference with neither tag nor digest gets ``:latest``.
    """
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r} (empty or surrounded by spaces)")
    if not text.isascii():
        raise InvalidReference(f"invalid reference format: {text!r} has characters outside ASCII")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid reference format: {text!r} has a malformed digest")
        if digest.startswith("sha256:") and not _SHA256.match(digest):
            raise InvalidReference(f"invalid reference format: {text!r}: sha256 digests are 64 lower-case hex digits")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid reference format: {text!r} has an invalid tag {tag!r}")
    registry, path = _split_registry(rest, text)
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            hint = " (repository names must be lower-case)" if component.lower() != component else ""
            raise InvalidReference(f"invalid reference format: repository name {path!r} in {text!r} is not valid{hint}")
    if len(registry) + 1 + len(path) > 255:
        raise InvalidReference(f"invalid reference format: {text!r} is longer than 255 characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(registry, path, tag, digest)


def _split_registry(rest: str, text: str) -> tuple[str, str]:
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST.match(first):
            raise InvalidReference(f"invalid reference format: {text!r} has an invalid registry host {first!r}")
        registry = DEFAULT_REGISTRY if first in _LEGACY_REGISTRIES else first
        path = remainder
    else:
        registry, path = DEFAULT_REGISTRY, rest
    if not path:
        raise InvalidReference(f"invalid reference format: {text!r} has no repository name")
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return registry, path
