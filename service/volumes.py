"""``/volumes/...``: the named volumes of ``pybuild volume``."""

from __future__ import annotations

from typing import Any

from runner import volumes
from runner.errors import RunError

from .http import ApiError, Request


def list_(req: Request) -> dict[str, Any]:
    filters = req.json_query("filters")
    names = filters.get("name") or []
    names = list(names.keys()) if isinstance(names, dict) else list(names)
    found = [v for v in volumes.all_volumes(req.root) if not names or any(n in v["Name"] for n in names)]
    return {"Volumes": found, "Warnings": []}


def create(req: Request) -> None:
    body = req.json()
    if (body.get("Driver") or "local") != "local":
        raise ApiError(400, f"volume driver {body['Driver']!r} is not supported: use local")
    req.send(201, volumes.create(req.root, body.get("Name") or None, dict(body.get("Labels") or {})))


def inspect(req: Request) -> dict[str, Any]:
    try:
        return volumes.inspect(req.root, req.params[0])
    except volumes.NoSuchVolume:
        raise ApiError(404, f"get {req.params[0]}: no such volume") from None


def delete(req: Request) -> None:
    inspect(req)
    try:
        volumes.remove(req.root, req.params[0], req.flag("force"))
    except RunError as err:
        raise ApiError(409, str(err)) from None
    req.send(204)


def prune(req: Request) -> dict[str, Any]:
    removed = [v["Name"] for v in volumes.all_volumes(req.root) if not volumes.users(req.root, v["Name"])]
    for name in removed:
        volumes.remove(req.root, name)
    return {"VolumesDeleted": removed, "SpaceReclaimed": 0}


ROUTES = [
    ("GET", r"/volumes", list_),
    ("POST", r"/volumes/create", create),
    ("POST", r"/volumes/prune", prune),
    ("GET", r"/volumes/([^/]+)", inspect),
    ("DELETE", r"/volumes/([^/]+)", delete),
]
