"""What must be undone: one teardown record per container with a network namespace.

``$ROOT/netns/<id>`` is the namespace (a bind mount) and ``$ROOT/netns/<id>.json``
lists its attachments: for each, the exact configuration list, interface name,
runtime values (ports, requested address) and the ADD result, which is what CNI DEL
needs to remove the veth, release the address in host-local's data dir and delete
the iptables rules.  The record is written *before* each ADD, so a pybuild killed at
any point leaves enough behind for the next command to undo it (DEL is idempotent).
Writers hold an ``flock`` on the record; a record whose file was unlinked is dead.
"""

from __future__ import annotations

import fcntl
import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def netns_dir(root: str) -> str:
    return os.path.join(root, "netns")


def netns_path(root: str, cid: str) -> str:
    return os.path.join(netns_dir(root), cid)


def _record_path(root: str, cid: str) -> str:
    return netns_path(root, cid) + ".json"


class Record:
    """A locked teardown record (``with Record(root, cid) as rec``); ``rec.data`` is None when absent."""

    def __init__(self, root: str, cid: str, create: bool = False):
        self.path = _record_path(root, cid)
        self.create = create
        self.data: dict[str, Any] | None = None
        self.fd = -1

    def __enter__(self) -> "Record":
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if self.create else 0)
        if self.create:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            self.fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:
            return self
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        if os.fstat(self.fd).st_nlink == 0:  # removed by whoever held the lock before us
            return self
        raw = os.pread(self.fd, 1 << 22, 0)
        self.data = json.loads(raw) if raw else None
        return self

    def save(self, data: dict[str, Any]) -> None:
        """Write the record in place (it is small; the lock makes this atomic enough for readers)."""
        self.data = data
        raw = json.dumps(data).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, raw, 0)

    def delete(self) -> None:
        os.unlink(self.path)
        self.data = None

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)


def recorded(root: str) -> list[str]:
    """Container ids that have a teardown record."""
    try:
        names = os.listdir(netns_dir(root))
    except FileNotFoundError:
        return []
    return [n[: -len(".json")] for n in names if n.endswith(".json")]


def read(root: str, cid: str) -> dict[str, Any] | None:
    """The record, once no teardown or change holds it (None if that removed it)."""
    try:
        fd = os.open(_record_path(root, cid), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_nlink == 0:
            return None
        return json.loads(os.pread(fd, 1 << 22, 0) or b"null")
    except ValueError:
        return None
    finally:
        os.close(fd)
