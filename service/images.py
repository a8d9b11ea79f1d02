"""``/images/...``: list, inspect, history, tag, remove, pull and push, on the store."""

from __future__ import annotations

from typing import Any

from registry.errors import ImageNotFound, PybuildError
from registry.store import Store

from .http import ApiError, Request


def _image_name(req: Request) -> str:
    return req.params[0]


def list_(req: Request) -> list[dict[str, Any]]:
    from builder.commands._common import parse_time
    from registry import oci

    store = Store(req.root)
    filters = req.json_query("filters")
    references = _values(filters, "reference")
    rows: dict[str, dict[str, Any]] = {}
    for ref, desc in store.entries():
        if desc.media_type in oci.INDEX_TYPES and len(oci.image_manifests(store.read_json(desc.digest))) > 1:
            image_id, size, config = desc.digest, 0, {}
        else:
            image = store.image_at(desc)
            image_id, size, config = image.id, image.size, image.config
        row = rows.setdefault(image_id, {
            "Id": image_id, "ParentId": "", "RepoTags": [], "RepoDigests": [],
            "Created": int(parse_time(config.get("created")) or 0), "Size": size, "VirtualSize": size,
            "SharedSize": -1, "Labels": (config.get("config") or {}).get("Labels") or {}, "Containers": -1})
        if ref is not None and ref.tag and _wanted(ref, references):
            row["RepoTags"].append(ref.familiar())
        if ref is not None and ref.digest and _wanted(ref, references):
            row["RepoDigests"].append(f"{ref.familiar_name}@{ref.digest}")
    out = list(rows.values())
    if references:
        out = [row for row in out if row["RepoTags"] or row["RepoDigests"]]
    for key in _values(filters, "dangling"):
        out = [row for row in out if (not row["RepoTags"]) == (key in ("1", "true"))]
    for spec in _values(filters, "label"):
        name, eq, value = spec.partition("=")
        out = [row for row in out if name in row["Labels"] and (not eq or row["Labels"][name] == value)]
    return out


def _values(filters: dict[str, Any], key: str) -> list[str]:
    raw = filters.get(key) or []
    return list(raw.keys()) if isinstance(raw, dict) else list(raw)


def _wanted(ref: Any, patterns: list[str]) -> bool:
    """docker's ``reference`` filter: a glob on the familiar name, or on name:tag."""
    from fnmatch import fnmatchcase

    return not patterns or any(fnmatchcase(ref.familiar_name, p) or fnmatchcase(ref.familiar(), p) for p in patterns)


def _resolve_or_404(store: Store, name: str):
    try:
        return store.resolve(name)
    except (ImageNotFound, PybuildError):
        raise ApiError(404, f"No such image: {name}") from None


def inspect(req: Request) -> dict[str, Any]:
    from builder.commands.inspect import describe

    store = Store(req.root)
    _resolve_or_404(store, _image_name(req))
    out = describe(store, _image_name(req))
    out["ContainerConfig"] = out["Config"]
    out["GraphDriver"] = {"Name": "overlay", "Data": None}
    out["Metadata"] = {"LastTagTime": "0001-01-01T00:00:00Z"}  # docker's zero time; clients parse it
    out["Created"] = out["Created"] or "0001-01-01T00:00:00Z"
    return out


def history(req: Request) -> list[dict[str, Any]]:
    from builder.commands._common import parse_time

    store = Store(req.root)
    image = store.image_at(_resolve_or_404(store, _image_name(req)))
    entries = image.config.get("history") or []
    out = [{"Id": "<missing>", "Created": int(parse_time(h.get("created")) or 0),
            "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": 0, "Comment": h.get("comment", "")}
           for h in entries]
    out.reverse()
    if out:
        out[0]["Id"] = image.id
    return out


def tag(req: Request) -> None:
    from registry.reference import parse

    store = Store(req.root)
    desc = _resolve_or_404(store, _image_name(req))
    repo, tag_ = req.arg("repo"), req.arg("tag") or "latest"
    if not repo:
        raise ApiError(400, "repository name must have at least one component")
    try:
        store.tag(parse(f"{repo}:{tag_}"), desc)
    except PybuildError as err:
        raise ApiError(400, str(err)) from None
    req.send(201, b"", "text/plain")


def delete(req: Request) -> list[dict[str, str]]:
    from builder.commands.rmi import ImageInUse, remove_image
    from runner.containers import images_in_use

    store = Store(req.root)
    _resolve_or_404(store, _image_name(req))
    try:
        done = remove_image(store, _image_name(req), req.flag("force"), images_in_use(req.root))
    except ImageInUse as err:
        raise ApiError(409, f"conflict: unable to remove repository reference \"{_image_name(req)}\": {err}") from None
    return [{action: what} for action, what in done]


def pull(req: Request) -> None:
    """``POST /images/create?fromImage=..&tag=..``: progress as JSON lines, as docker streams it;
    ``X-Registry-Auth`` credentials are used for this pull only."""
    from registry.reference import parse
    from registry.remote.pull import pull_image

    from .registry_auth import for_request

    name, tag_ = req.arg("fromImage"), req.arg("tag")
    if req.arg("fromSrc"):
        raise ApiError(501, "importing a rootfs through the API is not supported; use 'pybuild import'")
    if not name:
        raise ApiError(400, "fromImage is required")
    if tag_:
        name += ("@" if tag_.startswith("sha256:") else ":") + tag_
    try:
        registry = parse(name).registry
    except PybuildError as err:
        raise ApiError(400, str(err)) from None
    credentials = for_request(req, registry)  # a bad header is a 400 before the stream
    body = req.stream()
    body.json({"status": f"Pulling from {name.rpartition(':')[0] or name}", "id": tag_ or "latest"})
    try:
        with credentials:
            result = pull_image(Store(req.root), name, platform=req.arg("platform") or None)
    except Exception as err:
        text = str(err)
        body.json({"errorDetail": {"message": text}, "error": text})
    else:
        body.json({"status": f"Digest: {result.digest}"})
        body.json({"status": f"Status: Downloaded newer image for {result.ref}"})
    body.close()


def push(req: Request) -> None:
    """``POST /images/{name}/push?tag=..``: with the ``X-Registry-Auth`` credentials (for this
    push only), else the service user's stored ones."""
    from registry.reference import parse
    from registry.remote.push import push_image

    from .registry_auth import for_request

    name = _image_name(req) + (f":{req.arg('tag')}" if req.arg("tag") else "")
    store = Store(req.root)
    _resolve_or_404(store, name)
    target = parse(name)
    credentials = for_request(req, target.registry)
    body = req.stream()
    body.json({"status": f"The push refers to repository [{target.name}]"})
    try:
        with credentials:
            digest = push_image(store, name, target)
    except Exception as err:
        text = str(err)
        body.json({"errorDetail": {"message": text}, "error": text})
    else:
        body.json({"status": f"{target.tag or 'latest'}: digest: {digest} size: 0"})
        body.json({"progressDetail": {}, "aux": {"Tag": target.tag or "latest", "Digest": digest, "Size": 0}})
    body.close()


def prune(req: Request) -> dict[str, Any]:
    """``POST /images/prune`` (filter ``dangling``): what ``pybuild prune`` does, or with
    ``dangling=false`` every image no container uses, as ``docker image prune -a``."""
    from builder.commands.prune import prune_images
    from runner.containers import images_in_use

    filters = req.json_query("filters")
    unknown = sorted(set(filters) - {"dangling"})
    if unknown:
        raise ApiError(400, f"invalid filter {unknown[0]!r}: the service prunes images by 'dangling' only")
    dangling = _values(filters, "dangling") or ["true"]
    if dangling[-1].lower() not in ("1", "true", "0", "false"):
        raise ApiError(400, f"invalid filter 'dangling={dangling[-1]}': use true or false")
    result = prune_images(Store(req.root), req.root, images_in_use(req.root), dangling[-1].lower() in ("1", "true"))
    return {"ImagesDeleted": [{action: what} for action, what in result.done] or None,
            "SpaceReclaimed": result.space}


ROUTES = [
    ("GET", r"/images/json", list_),
    ("POST", r"/images/create", pull),
    ("POST", r"/images/prune", prune),
    ("GET", r"/images/(.+)/json", inspect),
    ("GET", r"/images/(.+)/history", history),
    ("POST", r"/images/(.+)/tag", tag),
    ("POST", r"/images/(.+)/push", push),
    ("DELETE", r"/images/(.+)", delete),
]
