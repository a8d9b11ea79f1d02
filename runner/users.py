"""The one /etc/passwd and /etc/group parser, and docker's ``-u USER[:GROUP]`` on it.

Used inside the container for ``-u``/USER and by the builder for ``--chown`` (reading
the stage's files through the safe in-root resolver).

Read inside the container (after pivot_root), so the image's files and symlinks are
what count, never the host's.  Rules follow runc's ``GetExecUser``: a name must
exist; a number need not (gid then defaults to 0 and HOME to ``/``); supplementary
groups come from /etc/group only when no group is given.
"""

from __future__ import annotations

import os


class UserError(Exception):
    """The user or group cannot be resolved."""


class ExecUser:
    """The identity the container process runs as."""

    def __init__(self, uid: int, gid: int, groups: list[int], home: str):
        self.uid, self.gid, self.groups, self.home = uid, gid, groups, home

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExecUser) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"ExecUser(uid={self.uid}, gid={self.gid}, groups={self.groups}, home={self.home!r})"


class PasswdEntry:
    """One /etc/passwd line (the fields pybuild uses).  A plain class: typing's
    NamedTuple would put ``typing`` on the run path."""

    __slots__ = ("name", "uid", "gid", "home")

    def __init__(self, name: str, uid: int, gid: int, home: str):
        self.name, self.uid, self.gid, self.home = name, uid, gid, home


class GroupEntry:
    """One /etc/group line."""

    __slots__ = ("name", "gid", "members")

    def __init__(self, name: str, gid: int, members: list[str]):
        self.name, self.gid, self.members = name, gid, members


def _id(text: str) -> int | None:
    """A decimal id (ASCII digits only, as Go's strconv), else None."""
    return int(text) if text.isascii() and text.isdigit() else None


def _rows(text: str, fields: int) -> list[list[str]]:
    """Lines split on ``:`` as runc's parser reads them: trimmed, empty lines skipped,
    missing fields empty (a short line is still an entry)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            parts = line.split(":")
            rows.append(parts + [""] * (fields - len(parts)))
    return rows


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Entries of an /etc/passwd text; an id that is not a number reads as 0 (as runc)."""
    return [PasswdEntry(r[0], _id(r[2]) or 0, _id(r[3]) or 0, r[5]) for r in _rows(text, 7)]


def parse_group(text: str) -> list[GroupEntry]:
    """Entries of an /etc/group text."""
    return [GroupEntry(r[0], _id(r[2]) or 0, [m for m in r[3].split(",") if m]) for r in _rows(text, 4)]


def _read(path: str, root: str | None) -> str:
    """The text of ``path``, resolved inside ``root`` when given (a rootfs seen from the
    host); "" when missing or unreadable."""
    try:
        if root is None:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        else:
            from base import safepath  # noqa: PLC0415 (not needed inside the container)
            fd = safepath.open_in_root(root, path)
        with open(fd, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def read_passwd(path: str = "/etc/passwd", root: str | None = None) -> list[PasswdEntry]:
    """The image's users (inside the container, or in ``root``)."""
    return parse_passwd(_read(path, root))


def read_group(path: str = "/etc/group", root: str | None = None) -> list[GroupEntry]:
    """The image's groups (inside the container, or in ``root``)."""
    return parse_group(_read(path, root))


def resolve(spec: str, passwd: str = "/etc/passwd", group: str = "/etc/group") -> ExecUser:
    """Resolve ``""``, ``name``, ``uid``, ``name:group``, ``uid:gid`` (any mix)."""
    user_part, _, group_part = (spec or "0").partition(":")
    user_part = user_part or "0"
    users = read_passwd(passwd)
    groups = read_group(group)
    uid_num = _id(user_part)
    match = next((u for u in users if (u.name == user_part if uid_num is None else u.uid == uid_num)), None)
    if match is None:
        if uid_num is None:
            raise UserError(f"unable to find user {user_part}: no matching entries in passwd file")
        uid, gid, home, name = uid_num, 0, "/", None
    else:
        name, uid, gid, home = match.name, match.uid, match.gid, match.home or "/"
    if group_part:
        gid_num = _id(group_part)
        row = next((g for g in groups if (g.name == group_part if gid_num is None else g.gid == gid_num)), None)
        if row is None and gid_num is None:
            raise UserError(f"unable to find group {group_part}: no matching entries in group file")
        group_id = row.gid if row is not None else gid_num
        assert group_id is not None  # a name without a row was refused above
        return ExecUser(uid, group_id, [group_id], home)
    extra = [g.gid for g in groups if name is not None and name in g.members]
    supplementary = [gid] + [g for g in extra if g != gid]
    return ExecUser(uid, gid, supplementary, home)


def group_ids(names: list[str], group: str = "/etc/group") -> list[int]:
    """``--group-add``: numbers as they are, names looked up in the container's /etc/group."""
    groups = read_group(group)
    found = []
    for item in names:
        number = _id(item)
        if number is None:
            row = next((g for g in groups if g.name == item), None)
            if row is None:
                raise UserError(f"unable to find group {item}: no matching entries in group file")
            number = row.gid
        found.append(number)
    return found
