"""Named volumes (``$ROOT/volumes/<name>/_data``) and docker's ``--mount``/``--volumes-from``.

A volume is a directory pybuild owns; a container gets it as a bind mount.  The
first time an empty volume is mounted over a directory that the image fills, that
content is copied in (docker's behaviour, off with ``volume-nocopy``): done inside
the container's mount namespace by :func:`runner.volumecopy.populate`, after the
overlay is mounted and before the volume hides it, so the copy sees exactly the
image's view (a bind mount whose ``options`` are ``populate``).
"""

from __future__ import annotations

import json
import os
import re

from base.removal import remove_tree
from registry.errors import PybuildError

from .containers import _Lock, now
from .errors import RunError
from .spec import Mount

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class NoSuchVolume(PybuildError):
    """The volume named does not exist."""


def volumes_dir(root: str) -> str:
    return os.path.join(root, "volumes")


class Lock(_Lock):
    """Exclusive ``volumes/.lock``: creating and removing volumes."""

    def __init__(self, root: str):
        os.makedirs(volumes_dir(root), exist_ok=True)
        self.path = os.path.join(volumes_dir(root), ".lock")


def data_dir(root: str, name: str) -> str:
    """Where the volume's files are."""
    return os.path.join(volumes_dir(root), name, "_data")


def _meta_path(root: str, name: str) -> str:
    return os.path.join(volumes_dir(root), name, "meta.json")


def create(root: str, name: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A new volume (an anonymous one gets a random 64-hex name); an existing name is returned as is."""
    name = name or os.urandom(32).hex()
    if not _NAME.match(name):
        raise RunError(f"invalid volume name {name!r}: use letters, digits, '_', '.', '-' (start with a letter or digit)")
    with Lock(root):
        try:
            return inspect(root, name)
        except NoSuchVolume:
            pass
        os.makedirs(data_dir(root, name), mode=0o755)
        meta = {"Name": name, "Driver": "local", "Mountpoint": data_dir(root, name), "Labels": labels or {},
                "Scope": "local", "CreatedAt": now(), "Options": {}}
        with open(_meta_path(root, name), "w") as fh:
            json.dump(meta, fh)
    return meta


def inspect(root: str, name: str) -> dict[str, Any]:
    """A volume's description (docker's ``volume inspect`` fields)."""
    try:
        with open(_meta_path(root, name)) as fh:
            return json.load(fh)
    except (FileNotFoundError, NotADirectoryError):
        raise NoSuchVolume(f"no such volume: {name}") from None


def all_volumes(root: str) -> list[dict[str, Any]]:
    try:
        names = sorted(os.listdir(volumes_dir(root)))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        try:
            found.append(inspect(root, name))
        except NoSuchVolume:
            continue
    return found


def users(root: str, name: str) -> list[str]:
    """Names of the containers (running or not) that use volume ``name``."""
    from .containers import all_containers

    return [c.name for c in all_containers(root) if name in c.config.get("volume_names", [])]


def remove(root: str, name: str, force: bool = False) -> None:
    """Delete a volume and its files; refused while a container uses it."""
    inspect(root, name)
    used = users(root, name)
    if used and not force:
        raise RunError(f"remove {name}: volume is in use by container(s) {', '.join(used)}")

    with Lock(root):
        doomed = os.path.join(volumes_dir(root), f".removing-{name}")
        os.rename(os.path.join(volumes_dir(root), name), doomed)
        remove_tree(doomed, ignore_errors=True)


def volume_mount(root: str, name: str, target: str, readonly: bool, nocopy: bool = False) -> Mount:
    """A named volume (made if missing) as a bind mount, populated from the image on first use."""
    create(root, name)
    return Mount(target=target, type="bind", source=data_dir(root, name), readonly=readonly,
                 options="" if nocopy else "populate")


def parse_mount(root: str, text: str) -> tuple[Mount, str | None]:
    """``--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,...]``: (mount, volume name)."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        fields[key.strip().lower()] = value if eq else "true"
    kind = fields.pop("type", "volume")
    source = fields.pop("source", None) or fields.pop("src", None)
    target = fields.pop("target", None) or fields.pop("destination", None) or fields.pop("dst", None)
    readonly = fields.pop("readonly", fields.pop("ro", "false")) in ("true", "1")
    if not target or not target.startswith("/"):
        raise RunError(f"invalid --mount {text!r}: target=/absolute/path is required")
    if kind == "bind":
        fields.pop("bind-propagation", None)
        if not source or not source.startswith("/") or not os.path.exists(source):
            raise RunError(f"invalid --mount {text!r}: bind source path does not exist: {source}")
        mount, name = Mount(target=target, type="bind", source=os.path.realpath(source), readonly=readonly), None
    elif kind == "volume":
        nocopy = fields.pop("volume-nocopy", "false") in ("true", "1")
        name = source or create(root)["Name"]
        mount = volume_mount(root, name, target, readonly, nocopy)
    elif kind == "tmpfs":
        if source:
            raise RunError(f"invalid --mount {text!r}: a tmpfs has no source")
        options = []
        if "tmpfs-size" in fields:
            options.append(f"size={fields.pop('tmpfs-size')}")
        options.append(f"mode={fields.pop('tmpfs-mode', '1777')}")
        mount, name = Mount(target=target, type="tmpfs", options=",".join(options), readonly=readonly), None
    else:
        raise RunError(f"invalid --mount {text!r}: type must be bind, volume or tmpfs")
    if fields:
        raise RunError(f"invalid --mount {text!r}: unknown option(s) {', '.join(sorted(fields))}")
    return mount, name
