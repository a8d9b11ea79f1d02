"""``RUN --mount=...`` specs: ``type=cache|secret|bind|tmpfs|ssh`` and their options."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from builder.dockerfile.record import Record

__all__ = ["Mount", "MountError", "parse_mount"]

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class MountError(ValueError):
    """A ``--mount`` value docker would reject."""


class Mount(Record):
    """One ``RUN --mount``.

    ``target`` is where it appears in the container. ``bind``: ``source`` (a
    path in ``from``, default the build context) read-only unless ``rw``.
    ``cache``: a persistent dir keyed by ``id`` (default: the target),
    ``sharing`` shared|private|locked, ``from``/``source`` seed it.
    ``secret``: the file of secret ``id`` (default: target's basename) at
    ``target`` (default ``/run/secrets/<id>``), ``required`` fails the build if
    absent. ``tmpfs``: an empty tmpfs, ``size`` bytes max (0: no limit).
    ``mode``/``uid``/``gid`` apply to cache and secret mounts (None: BuildKit's
    defaults, 0400 root-owned for a secret file, 0755 root-owned for a new cache).
    """

    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int = 0


def _parse_bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _parse_uint(key: str, value: str, base: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        number = -1
    if not 0 <= number < 1 << 32:
        raise MountError(f"invalid value {value} for {key}")
    return number


def _ram_bytes(value: str) -> int:
    """docker's ``units.RAMInBytes``: ``64m``, ``1g``, ``512k``, ``100`` (binary units)."""
    text = value.strip().lower()
    units = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    num = text.rstrip("bkmgtpi")
    suffix = text[len(num):].replace("i", "").rstrip("b") or ""
    try:
        return int(float(num) * units[suffix])
    except (ValueError, KeyError):
        raise MountError(f"invalid value for size: {value}") from None


def parse_mount(spec: str, expand: Callable[[str], str] | None = None) -> Mount:
    """Parse one ``--mount`` value; ``expand`` substitutes variables in values."""
    import csv  # only Dockerfiles with RUN --mount pay for it

    fields = next(csv.reader([spec]), [])
    values: dict[str, object] = {}
    mtype = "bind"
    for field in fields:
        if field.lower().startswith("type="):
            value = expand(field[5:]) if expand is not None else field[5:]
            mtype = value.lower()
            if mtype not in MOUNT_TYPES:
                raise MountError(f"unsupported mount type {value!r}")
    ro_auto = True
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                values["readonly"], ro_auto = True, False
            elif key in ("readwrite", "rw"):
                values["readonly"], ro_auto = False, False
            elif key == "required" and mtype in ("secret", "ssh"):
                values["required"] = True
            elif key == "required":
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            else:
                raise MountError(f"invalid field '{field}' must be a key=value pair")
            continue
        if expand is not None:
            value = expand(value)
        if key == "type":
            continue
        if key == "from":
            values["from_"] = value
        elif key in ("source", "src"):
            values["source"] = value
        elif key in ("target", "dst", "destination"):
            values["target"] = value
        elif key in ("readonly", "ro"):
            values["readonly"], ro_auto = _parse_bool(key, value), False
        elif key in ("readwrite", "rw"):
            values["readonly"], ro_auto = not _parse_bool(key, value), False
        elif key == "required":
            if mtype not in ("secret", "ssh"):
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            values["required"] = _parse_bool(key, value)
        elif key == "size":
            if mtype != "tmpfs":
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            values["size"] = _ram_bytes(value)
        elif key == "id":
            values["id"] = value
        elif key == "sharing":
            if value.lower() not in SHARING_MODES:
                raise MountError(f"unsupported sharing value {value!r}")
            values["sharing"] = value.lower()
        elif key == "mode":
            values["mode"] = _parse_uint("mode", value, 8)
        elif key in ("uid", "gid"):
            values[key] = _parse_uint(key, value, 10)
        else:
            raise MountError(f"unexpected key '{key}' in '{field}'")
    return _validate(mtype, values, ro_auto)


def _validate(mtype: str, values: dict[str, object], ro_auto: bool) -> Mount:
    if mtype not in ("secret", "cache", "ssh"):
        for key in ("mode", "uid", "gid"):
            if key in values:
                raise MountError(f"{key} not allowed for {mtype!r} type mounts")
    if ro_auto:
        values["readonly"] = mtype not in ("cache", "tmpfs")
    if "sharing" in values and mtype != "cache":
        raise MountError(f"invalid cache sharing set for {mtype} mount")
    if mtype == "secret":
        if values.get("from_"):
            raise MountError("secret mount should not have a from")
        if not (values.get("source") or values.get("target") or values.get("id")):
            raise MountError("invalid secret mount. one of source, target required")
        if values.get("source") and values.get("id"):
            raise MountError("both source and id can't be set")
        ident = str(values.get("id") or values.get("source") or posixpath.basename(str(values["target"])))
        values["id"] = ident
        values.setdefault("target", "/run/secrets/" + ident)
        if not values["target"]:
            values["target"] = "/run/secrets/" + ident
    elif mtype == "ssh":  # BuildKit's defaults: agent id "default" at /run/buildkit/ssh_agent.0
        if values.get("from_") or values.get("source"):
            raise MountError("ssh mount should not have a from or source")
        values["id"] = values.get("id") or "default"
        values["target"] = values.get("target") or "/run/buildkit/ssh_agent.0"
    elif not values.get("target"):
        raise MountError(f"mount type '{mtype}' requires a target")
    if mtype == "cache" and not values.get("id"):
        values["id"] = values["target"]
    return Mount(type=mtype, **values)  # type: ignore[arg-type]
