"""Name resolution without a daemon: ``/etc/hosts`` kept current for every container.

Docker answers container names and aliases from an embedded DNS server in its
daemon.  pybuild has no daemon, so every container attached to a user-defined
network is listed in ``networks/members.json``; whenever one joins or leaves, under
the networks lock, the ``/etc/hosts`` of every member is rewritten *in place* (the
container sees the bind-mounted inode change) with the names and aliases of all the
containers it shares a user-defined network with.  As with docker, the default
``bridge`` network resolves no names; a container on another network never appears.
"""

from __future__ import annotations

import json
import os

from ..textfile import read_text
from . import config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_BASE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def base_hosts(hostname: str, ips: list[str], extra: list[str]) -> str:
    """A container's own ``/etc/hosts``: docker's defaults, ``--add-host`` entries, its address."""
    lines = [_BASE]
    for item in extra:
        name, _, address = item.partition(":")
        lines.append(f"{address}\t{name}\n")
    lines.extend(f"{ip}\t{hostname}\n" for ip in ips)
    return "".join(lines)


def resolv_conf(dns: list[str], search: list[str], options: list[str]) -> str:
    """The host's resolv.conf without loopback servers (unreachable from the container's
    namespace; docker then falls back to Google's), with ``--dns*`` replacing parts."""
    servers, searches, opts = [], [], []
    for line in read_text("/etc/resolv.conf").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and not words[1].startswith(("127.", "::1")):
            servers.append(words[1])
        elif words and words[0] in ("search", "domain"):
            searches = words[1:]
        elif words and words[0] == "options":
            opts.extend(words[1:])
    servers = dns or servers or ["8.8.8.8", "8.8.4.4"]
    text = "".join(f"nameserver {s}\n" for s in servers)
    if search or searches:
        text += "search " + " ".join(search or searches) + "\n"
    if options or opts:
        text += "options " + " ".join(options or opts) + "\n"
    return text


def _members_path(root: str) -> str:
    return os.path.join(config.networks_dir(root), "members.json")


def _load(root: str) -> dict[str, Any]:
    try:
        with open(_members_path(root)) as fh:
            return json.load(fh)
    except (FileNotFoundError, ValueError):
        return {}


def _save(root: str, members: dict[str, Any]) -> None:
    tmp = f"{_members_path(root)}.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(members, fh)
    os.replace(tmp, _members_path(root))


def _render(members: dict[str, Any], cid: str) -> str:
    me = members[cid]
    lines = [me["base"]]
    for net in me["networks"]:
        if net == config.DEFAULT:
            continue
        for other, entry in sorted(members.items()):
            theirs = entry["networks"].get(net)
            if other != cid and theirs:
                lines.append(f"{theirs['ip']}\t{' '.join(theirs['names'])}\n")
    return "".join(lines)


def _rewrite(path: str, text: str) -> None:
    """Replace the content of an existing file in place (same inode: it is bind-mounted)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # not started yet: its owner writes it, then calls join again
    try:
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _update(root: str, cid: str, entry: dict[str, Any] | None) -> str:
    """Set (or with None remove) one member and rewrite every affected hosts file; ``cid``'s text."""
    with config.Lock(root):
        members = _load(root)
        old = members.pop(cid, None)
        if entry is not None:
            members[cid] = entry
        _save(root, members)
        touched = set((entry or {}).get("networks", {})) | set((old or {}).get("networks", {}))
        mine = ""
        for other, data in members.items():
            if other == cid or touched & set(data["networks"]):
                text = _render(members, other)
                _rewrite(data["hosts"], text)
                if other == cid:
                    mine = text
        return mine


def join(root: str, cid: str, hosts_path: str, base: str, networks: dict[str, dict[str, Any]]) -> str:
    """Record ``cid`` (``networks``: name -> ``{"ip", "names"}``); its full hosts text."""
    return _update(root, cid, {"hosts": hosts_path, "base": base, "networks": networks})


def leave(root: str, cid: str) -> None:
    """Forget ``cid`` and drop it from the hosts files of its former peers."""
    _update(root, cid, None)


def member(root: str, cid: str) -> dict[str, Any] | None:
    """What ``members.json`` holds for ``cid``."""
    return _load(root).get(cid)
