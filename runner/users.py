"""Resolve docker's ``-u USER[:GROUP]`` against the image's /etc/passwd and /etc/group.

Read inside the container (after pivot_root), so the image's files and symlinks are
what count, never the host's.  Rules follow runc's ``GetExecUser``: a name must
exist; a number need not (gid then defaults to 0 and HOME to ``/``); supplementary
groups come from /etc/group only when no group is given.
"""

from __future__ import annotations


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


def _read_db(path: str, fields: int) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            rows.append(parts)
    return rows


def _num(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve(spec: str, passwd: str = "/etc/passwd", group: str = "/etc/group") -> ExecUser:
    """Resolve ``""``, ``name``, ``uid``, ``name:group``, ``uid:gid`` (any mix)."""
    user_part, _, group_part = (spec or "0").partition(":")
    user_part = user_part or "0"
    users = _read_db(passwd, 7)
    groups = _read_db(group, 3)
    uid_num = _num(user_part)
    match = next((u for u in users if (u[0] == user_part if uid_num is None else _num(u[2]) == uid_num)), None)
    if match is None:
        if uid_num is None:
            raise UserError(f"unable to find user {user_part}: no matching entries in passwd file")
        uid, gid, home, name = uid_num, 0, "/", None
    else:
        name, uid, gid, home = match[0], int(match[2]), int(match[3] or 0), match[5] or "/"
    if group_part:
        gid_num = _num(group_part)
        row = next((g for g in groups if (g[0] == group_part if gid_num is None else _num(g[2]) == gid_num)), None)
        if row is None and gid_num is None:
            raise UserError(f"unable to find group {group_part}: no matching entries in group file")
        group_id = gid_num if row is None else int(row[2])
        return ExecUser(uid, group_id, [group_id], home)
    extra = [int(g[2]) for g in groups if name is not None and name in g[3].split(",") and g[2].isdigit()]
    supplementary = [gid] + [g for g in extra if g != gid]
    return ExecUser(uid, gid, supplementary, home)


def group_ids(names: list[str], group: str = "/etc/group") -> list[int]:
    """``--group-add``: numbers as they are, names looked up in the container's /etc/group."""
    rows = _read_db(group, 3)
    found = []
    for item in names:
        number = _num(item)
        if number is None:
            row = next((g for g in rows if g[0] == item and g[2].isdigit()), None)
            if row is None:
                raise UserError(f"unable to find group {item}: no matching entries in group file")
            number = int(row[2])
        found.append(number)
    return found
