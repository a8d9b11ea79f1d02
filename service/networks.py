"""``/networks/...``: the bridge networks of ``pybuild network`` (CNI), by name or id."""

from __future__ import annotations

from typing import Any

from .http import ApiError, Request


def _conflist(req: Request) -> dict[str, Any]:
    from builder.commands.network import network_id
    from runner.network import config

    ref = req.params[0]
    for conf in config.all_networks(req.root):
        if ref == conf["name"] or (len(ref) >= 3 and network_id(conf).startswith(ref)):
            return conf
    raise ApiError(404, f"network {ref} not found")


def _filtered(req: Request, nets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    filters = req.json_query("filters")

    def values(key: str) -> list[str]:
        raw = filters.get(key) or []
        return list(raw.keys()) if isinstance(raw, dict) else list(raw)

    out = []
    for net in nets:
        if values("name") and not any(n in net["Name"] for n in values("name")):
            continue
        if values("id") and not any(net["Id"].startswith(i) for i in values("id")):
            continue
        labels = net.get("Labels") or {}
        if not all(k in labels and (not eq or labels[k] == v)
                   for k, eq, v in (spec.partition("=") for spec in values("label"))):
            continue
        out.append(net)
    return out


def _describe(root: str, conf: dict[str, Any]) -> dict[str, Any]:
    """``pybuild network inspect``'s description; ``Options`` are those a client gave (none),
    as docker shows them: docker-compose recreates a network whose options differ."""
    from builder.commands.network import describe

    return dict(describe(root, conf), Options={})


def list_(req: Request) -> list[dict[str, Any]]:
    from runner.network import config

    return _filtered(req, [_describe(req.root, conf) for conf in config.all_networks(req.root)])


def inspect(req: Request) -> dict[str, Any]:
    return _describe(req.root, _conflist(req))


def create(req: Request) -> None:
    from builder.commands.network import network_id
    from runner.network import config

    body = req.json()
    name = body.get("Name") or ""
    if (body.get("Driver") or "bridge") != "bridge":
        raise ApiError(400, f"network driver {body['Driver']!r} is not supported: use bridge")
    if any(conf["name"] == name for conf in config.all_networks(req.root)):
        raise ApiError(409, f"network with name {name} already exists")
    ipam = ((body.get("IPAM") or {}).get("Config") or [{}])
    subnet, gateway = (ipam[0].get("Subnet") or None, ipam[0].get("Gateway") or None) if ipam else (None, None)
    conf = config.create(req.root, name, subnet, gateway, dict(body.get("Labels") or {}), bool(body.get("Internal")))
    req.send(201, {"Id": network_id(conf), "Warning": ""})


def delete(req: Request) -> None:
    from builder.commands.network import remove_network

    conf = _conflist(req)
    try:
        remove_network(req.root, conf["name"])
    except Exception as err:
        text = str(err)
        raise ApiError(403 if "pre-defined" in text else 409 if "active endpoints" in text else 500, text) from None
    req.send(204)


def connect(req: Request) -> None:
    """A running container is attached now; a created one gets it in its record (docker
    allows that, and docker-compose re-connects every network of a container it created)."""
    from runner import containers
    from runner.network.cni_backend import connect as attach

    conf = _conflist(req)
    body = req.json()
    endpoint = body.get("EndpointConfig") or {}
    container = containers.lookup(req.root, body.get("Container") or "")
    wanted = {"name": conf["name"], "aliases": list(endpoint.get("Aliases") or []),
              "ip": (endpoint.get("IPAMConfig") or {}).get("IPv4Address") or None}
    if container.state.get("status") == "created":
        _edit_networks(container, lambda nets: [n for n in nets if n["name"] != conf["name"]] + [wanted])
        return
    attach(container, wanted)


def disconnect(req: Request) -> None:
    from runner import containers
    from runner.network.cni_backend import disconnect as detach

    conf = _conflist(req)
    container = containers.lookup(req.root, req.json().get("Container") or "")
    if container.state.get("status") == "created":
        _edit_networks(container, lambda nets: [n for n in nets if n["name"] != conf["name"]])
        return
    detach(container, conf["name"])


def _edit_networks(container: Any, change: Any) -> None:
    """Rewrite the network list of a container that has not started (its config is read at the start)."""
    import json
    import os

    if "networks" not in container.config:
        raise ApiError(400, f"container {container.name} is not on a bridge network (network mode "
                            f"{container.config.get('network')})")
    networks = change(list(container.config["networks"]))
    if not networks:  # docker-compose disconnects, then connects again: keep the primary network until then
        return
    container.config["networks"] = networks
    container.config["network"] = networks[0]["name"]
    tmp = container.path(f"config.json.{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(container.config, fh)
    os.replace(tmp, container.path("config.json"))


ROUTES = [
    ("GET", r"/networks", list_),
    ("POST", r"/networks/create", create),
    ("GET", r"/networks/([^/]+)", inspect),
    ("DELETE", r"/networks/([^/]+)", delete),
    ("POST", r"/networks/([^/]+)/connect", connect),
    ("POST", r"/networks/([^/]+)/disconnect", disconnect),
]
