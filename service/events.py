"""``GET /events``: container events (create, start, die, destroy) of this service, as
docker sends them; each subscriber has its own queue, filled by :func:`emit`."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from .http import Request

_SUBSCRIBERS: set[queue.Queue] = set()
_LOCK = threading.Lock()


def emit(action: str, container: Any, **attributes: str) -> None:
    """Tell every subscriber that ``action`` happened to ``container``."""
    now = time.time_ns()
    attrs = {**(container.config.get("labels") or {}), "image": container.config.get("image", ""),
             "name": container.name, **attributes}
    event = {"status": action, "id": container.id, "from": container.config.get("image", ""), "Type": "container",
             "Action": action, "Actor": {"ID": container.id, "Attributes": attrs}, "scope": "local",
             "time": now // 1_000_000_000, "timeNano": now}
    with _LOCK:
        for q in _SUBSCRIBERS:
            q.put(event)


def _wanted(event: dict[str, Any], filters: dict[str, Any]) -> bool:
    def values(key: str) -> list[str]:
        raw = filters.get(key) or []
        return list(raw.keys()) if isinstance(raw, dict) else list(raw)

    attrs = event["Actor"]["Attributes"]
    checks = [
        (values("type"), lambda v: v == event["Type"]),
        (values("event"), lambda v: v == event["Action"]),
        (values("container"), lambda v: v in (event["id"], attrs.get("name")) or event["id"].startswith(v)),
        (values("label"), lambda v: v.partition("=")[0] in attrs and (
            "=" not in v or attrs[v.partition("=")[0]] == v.partition("=")[2])),
    ]
    return all(any(match(v) for v in wanted) for wanted, match in checks if wanted)


def events(req: Request) -> None:
    """Stream events from now on; ``until`` (seconds) ends the stream."""
    filters = req.json_query("filters")
    until = float(req.arg("until")) if req.arg("until") else None
    q: queue.Queue = queue.Queue()
    with _LOCK:
        _SUBSCRIBERS.add(q)
    try:
        body = req.stream()
        while True:
            timeout = None if until is None else max(0.0, until - time.time())
            try:
                event = q.get(timeout=timeout)
            except queue.Empty:
                break
            if _wanted(event, filters):
                body.json(event)
        body.close()
    except OSError:  # the client went away
        pass
    finally:
        with _LOCK:
            _SUBSCRIBERS.discard(q)


ROUTES = [
    ("GET", r"/events", events),
]
