"""``--build-context NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG]``: named contexts for
``COPY --from=NAME``, ``RUN --mount from=NAME`` and ``FROM NAME``, as BuildKit reads them.

A directory is a source tree (its key is the checksum of everything in it, so a change
reruns the steps that copy from it); an image reference replaces the name; an OCI layout
is copied into the store once per build and used as an image.  A named context takes
precedence over a stage or image of the same name.
"""

from __future__ import annotations

import os
import threading

from registry.errors import PybuildError


class NamedContexts:
    def __init__(self, values: dict[str, str]):
        self.values = dict(values)
        self._dir_keys: dict[str, str] = {}
        self._imported: dict[str, str] = {}
        self._lock = threading.Lock()

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def directory(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or "://" in value:
            return None
        return value

    def directory_key(self, name: str) -> str:
        """The content checksum of a directory context (computed once per build)."""
        with self._lock:
            if name not in self._dir_keys:
                from .cache import step_key  # noqa: PLC0415
                from .context import Context  # noqa: PLC0415
                self._dir_keys[name] = step_key("context-dir", Context(self.values[name]).checksum(""))
            return self._dir_keys[name]

    def image_name(self, name: str, store) -> str | None:
        """The store or registry name an image context stands for, or None (not an image context)."""
        value = self.values.get(name)
        if value is None:
            return None
        if value.startswith("docker-image://"):
            return value[len("docker-image://"):]
        if value.startswith("oci-layout://"):
            with self._lock:
                if name not in self._imported:
                    self._imported[name] = _import_layout(store, value[len("oci-layout://"):], name)
                return self._imported[name]
        raise PybuildError(f"--build-context {name}={value}: a directory cannot be a base image (FROM {name})")


def parse(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise PybuildError(f"invalid --build-context {item!r}: use NAME=DIR|docker-image://REF|oci-layout://DIR")
        if value.startswith(("docker-image://", "oci-layout://")):
            pass
        elif "://" in value:
            raise PybuildError(f"invalid --build-context {item!r}: only directories, docker-image:// and "
                               f"oci-layout:// are supported")
        elif not os.path.isdir(value):
            raise PybuildError(f"--build-context {name}: {value} is not a directory")
        else:
            value = os.path.abspath(value)
        out[name] = value
    return out


def _import_layout(store, spec: str, name: str) -> str:
    """Copy an OCI layout's image (``DIR[:TAG]`` or ``DIR@DIGEST``) into the store; return its ID."""
    from registry.remote.locations import Location, copy_between  # noqa: PLC0415

    path, _, digest = spec.partition("@")
    if not digest and ":" in os.path.basename(path):
        path, _, tag = path.rpartition(":")
    else:
        tag = ""
    if digest:
        raise PybuildError(f"--build-context {name}: oci-layout://DIR@DIGEST is not supported; name a tag (DIR:TAG)")
    try:
        manifest = copy_between(store, Location("oci", path, tag), Location("store"))
    except (PybuildError, OSError) as err:
        raise PybuildError(f"--build-context {name}: reading OCI layout {path}: {err}") from None
    return manifest.digest
