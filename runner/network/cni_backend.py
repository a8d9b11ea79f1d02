"""The CNI backend: bridge networks made by the CNI reference plugins.

``setup`` gives a container its namespace and attachments before it starts;
``teardown`` undoes them when it exits, or later from another process (see
:mod:`.state`); ``connect``/``disconnect`` change a running container's networks.
"""

from __future__ import annotations

import os

from ..errors import RunError
from . import cni, config, isolation, names, netns, ports, state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..containers import Container


def _address(result: dict[str, Any]) -> dict[str, Any]:
    """IP, prefix, gateway and MAC of the container's interface in an ADD result."""
    ips = result.get("ips") or [{}]
    address, _, prefix = ips[0].get("address", "").partition("/")
    mac = ""
    iface = ips[0].get("interface")
    if iface is not None and iface < len(result.get("interfaces", [])):
        mac = result["interfaces"][iface].get("mac", "")
    return {"ip": address, "prefix": int(prefix or 0), "gateway": ips[0].get("gateway", ""), "mac": mac}


def _attach(rec: state.Record, root: str, cid: str, net: dict[str, Any], ifname: str,
            mappings: list[dict[str, Any]]) -> dict[str, Any]:
    conflist = config.load(root, net["name"])
    isolation.ensure(conflist["pybuild"]["bridge"])
    runtime: dict[str, Any] = {"portMappings": mappings, "ips": [net["ip"]] if net.get("ip") else []}
    att = {"network": net["name"], "aliases": net.get("aliases", []), "conflist": conflist, "ifname": ifname,
           "runtime": runtime, "result": None}
    data = rec.data or {}
    data["attachments"].append(att)
    rec.save(data)  # before ADD: a crash during it is undone by DEL from this record
    att["result"] = cni.add(conflist, cid, data["netns"], ifname, runtime)
    rec.save(data)
    return att


def _summary(container: Container, data: dict[str, Any]) -> dict[str, Any]:
    """What ``inspect`` and ``port`` show, and what the names module publishes."""
    nets = {}
    for att in data["attachments"]:
        nets[att["network"]] = dict(_address(att["result"] or {}), aliases=att["aliases"], ifname=att["ifname"])
    mappings = [m for att in data["attachments"] for m in att["runtime"].get("portMappings", [])]
    return {"netns": data["netns"], "networks": nets, "ports": mappings}


def _publish(container: Container, summary: dict[str, Any]) -> str:
    """Join the name registry; the container's /etc/hosts text."""
    cfg = container.config
    own = [n["ip"] for n in summary["networks"].values()][:1]
    base = names.base_hosts(cfg["hostname"], own, cfg.get("add_hosts", []))
    entries = {name: {"ip": n["ip"], "names": [container.name, *n["aliases"], container.short_id]}
               for name, n in summary["networks"].items()}
    return names.join(container.root, container.id, os.path.join(container.path("state"), "hosts"), base, entries)


def setup(container: Container) -> dict[str, str]:
    """Namespace, CNI ADD on each network, names: ``{"netns", "hosts", "resolv_conf"}``."""
    root, cid, cfg = container.root, container.id, container.config
    path = state.netns_path(root, cid)
    with state.Record(root, cid, create=True) as rec:
        rec.save({"cid": cid, "netns": path, "attachments": []})
        netns.create(path)
        netns.write_sysctls(path, cfg.get("sysctls") or {})
        mappings = ports.assign(cfg.get("ports", []))
        for i, net in enumerate(cfg["networks"]):
            _attach(rec, root, cid, net, f"eth{i}", mappings if i == 0 else [])
        summary = _summary(container, rec.data or {})
    container.save_state(network=summary)
    hosts = _publish(container, summary)
    dns = cfg.get("dns", {})
    return {"netns": path, "hosts": hosts,
            "resolv_conf": names.resolv_conf(dns.get("servers", []), dns.get("search", []), dns.get("options", []))}


def started(container: Container) -> None:
    """Once the container's hosts file is bind-mounted: write it again with the current peers."""
    summary = container.state.get("network")
    if summary:
        _publish(container, summary)


def _undo(rec: state.Record, root: str, cid: str) -> list[str]:
    """DEL each attachment of a locked record, remove the namespace and the record; the errors."""
    data = rec.data
    if data is None:
        return []
    errors = []
    target = data["netns"] if netns.is_mounted(data["netns"]) else ""
    for att in reversed(data["attachments"]):
        try:
            cni.delete(att["conflist"], cid, target, att["ifname"], att["runtime"], att["result"])
        except cni.CNIError as err:
            errors.append(str(err))
    netns.remove(data["netns"])
    rec.delete()
    return errors


def teardown(root: str, cid: str) -> list[str]:
    """Undo everything the record lists (names, DEL of each attachment, namespace); the errors."""
    with state.Record(root, cid) as rec:
        if rec.data is None:
            return []
        names.leave(root, cid)
        return _undo(rec, root, cid)


def teardown_background(root: str, cid: str) -> None:
    """:func:`teardown` at a container's exit, with the CNI DELs in a forked child.

    The exit code reaches the user without waiting for the plugins (~100 ms each).
    Names are dropped at once; the record stays locked (the lock is taken here and
    inherited) until the child is done, so ``network rm`` and the sweep wait for it,
    and a child killed half-way leaves the record for the next command's sweep.
    """
    rec = state.Record(root, cid).__enter__()
    if rec.data is None:
        rec.__exit__()
        return
    names.leave(root, cid)
    if os.fork() != 0:
        rec.__exit__()  # the child's copy of the fd keeps the lock
        return
    try:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        _undo(rec, root, cid)
    finally:
        os._exit(0)


def _owner_alive(root: str, cid: str) -> bool:
    """Whether the container is owned by a live process (which tears it down itself);
    a container whose owner died is recovered first (its exit recorded, its processes killed)."""
    from ..containers import _load, refresh
    from ..procinfo import alive

    container = _load(root, cid)
    if container is None:
        return False
    container = refresh(container)
    if container is None:
        return False
    st = container.state
    return st.get("status") in ("created", "running", "restarting") and alive(st.get("owner_pid"), st.get("owner_start"))


def sweep(root: str) -> None:
    """Tear down the networks of containers whose owner died (any pybuild command calls this)."""
    for cid in state.recorded(root):
        if not _owner_alive(root, cid):
            teardown(root, cid)


def connect(container: Container, net: dict[str, Any]) -> None:
    """Attach a running container to one more network (next free ``ethN``)."""
    root, cid = container.root, container.id
    with state.Record(root, cid) as rec:
        if rec.data is None or not container.running:
            raise RunError(f"container {container.name} is not running on a bridge network; "
                           "only a running container with its own network namespace can be connected")
        if any(a["network"] == net["name"] for a in rec.data["attachments"]):
            raise RunError(f"container {container.name} is already connected to network {net['name']}")
        used = {a["ifname"] for a in rec.data["attachments"]}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        _attach(rec, root, cid, net, ifname, [])
        summary = _summary(container, rec.data or {})
    container.save_state(network=summary)
    _publish(container, summary)


def disconnect(container: Container, name: str) -> None:
    """Detach a running container from one network (DEL of that attachment only)."""
    root, cid = container.root, container.id
    with state.Record(root, cid) as rec:
        data = rec.data
        att = next((a for a in (data or {}).get("attachments", []) if a["network"] == name), None)
        if data is None or att is None:
            raise RunError(f"container {container.name} is not connected to network {name}")
        cni.delete(att["conflist"], cid, data["netns"], att["ifname"], att["runtime"], att["result"])
        data["attachments"].remove(att)
        rec.save(data)
        summary = _summary(container, data)
    container.save_state(network=summary)
    _publish(container, summary)


def users(root: str, name: str) -> list[str]:
    """Ids of containers attached to network ``name`` now."""
    return [cid for cid in state.recorded(root)
            if any(a["network"] == name for a in (state.read(root, cid) or {}).get("attachments", []))]


def shared(root: str, ref: str) -> dict[str, str]:
    """``--network container:REF``: that running container's namespace, hosts and resolv.conf."""
    from ..containers import lookup
    from ..textfile import read_text

    other = lookup(root, ref)
    if not other.running:
        raise RunError(f"cannot join the network of container {other.name}: it is not running")
    record = state.read(root, other.id)
    path = record["netns"] if record else f"/proc/{other.state['pid']}/ns/net"
    folder = other.path("state")
    return {"netns": path, "hosts": read_text(os.path.join(folder, "hosts")),
            "resolv_conf": read_text(os.path.join(folder, "resolv.conf"))}
