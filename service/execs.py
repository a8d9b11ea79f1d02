"""``/containers/{id}/exec``, ``/exec/{id}/start``, ``/exec/{id}/json``: commands in a
running container, through the runner's :func:`runner.lifecycle.start_exec`."""

from __future__ import annotations

import os
import select
import socket
import threading
from typing import Any

from runner import containers, lifecycle

from . import streams
from .http import ApiError, Request

_EXECS: dict[str, dict[str, Any]] = {}
_LOCK = threading.Lock()


def create(req: Request) -> dict[str, str]:
    try:
        container = containers.lookup(req.root, req.params[0])
    except containers.NoSuchContainer:
        raise ApiError(404, f"No such container: {req.params[0]}") from None
    if not container.running:
        raise ApiError(409, f"Container {container.id} is not running")
    body = req.json()
    if not body.get("Cmd"):
        raise ApiError(400, "No exec command specified")
    exec_id = os.urandom(32).hex()
    with _LOCK:
        _EXECS[exec_id] = {"ID": exec_id, "ContainerID": container.id, "Running": False, "ExitCode": None,
                           "Pid": 0, "OpenStdin": bool(body.get("AttachStdin")),
                           "ProcessConfig": {"entrypoint": body["Cmd"][0], "arguments": body["Cmd"][1:],
                                             "tty": bool(body.get("Tty")), "user": body.get("User") or "",
                                             "privileged": False},
                           "_body": body}
    return {"Id": exec_id}


def _get(req: Request) -> dict[str, Any]:
    with _LOCK:
        found = _EXECS.get(req.params[0])
    if found is None:
        raise ApiError(404, f"No such exec instance: {req.params[0]}")
    return found


def start(req: Request) -> None:
    """Run it: output framed (raw with a TTY) on the hijacked connection until it exits."""
    record = _get(req)
    body = record["_body"]
    detach = bool(req.json().get("Detach"))
    container = containers.lookup(req.root, record["ContainerID"])
    tty = bool(body.get("Tty"))
    # The connection is taken over before the command starts, as dockerd does: a client
    # (docker-py) that reads the upgrade answer through a buffered reader and then the
    # raw socket loses output that arrived together with that answer.
    conn = None if detach else req.hijack()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = lifecycle.start_exec(container, list(body["Cmd"]), list(body.get("Env") or []),
                                    body.get("User") or None, body.get("WorkingDir") or None, tty,
                                    (None, out_w, err_w))
    except Exception as err:
        os.close(out_r)
        os.close(err_r)
        if conn is None:
            raise
        conn.sendall(streams.frame("stderr", f"{err}\n".encode()) if not tty else f"{err}\r\n".encode())
        record.update(ExitCode=getattr(err, "exit_code", 126))
        conn.shutdown(socket.SHUT_WR)
        return
    finally:
        os.close(out_w)
        os.close(err_w)
    record.update(Running=True, Pid=proc.pid)
    sources = {proc.console: "stdout"} if proc.console is not None else {out_r: "stdout", err_r: "stderr"}
    if proc.console is not None:
        os.close(out_r)
        os.close(err_r)
    try:
        _relay(sources, conn, tty)
    finally:
        for fd in sources:
            try:
                os.close(fd)
            except OSError:
                pass
        record.update(Running=False, ExitCode=proc.wait())
    if conn is not None:
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    else:
        req.send(204)


def _relay(sources: dict[int, str], conn: socket.socket | None, tty: bool) -> None:
    open_fds = dict(sources)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # a pty's EIO once the command is gone
                data = b""
            if not data:
                del open_fds[fd]
                continue
            if conn is not None:
                try:
                    conn.sendall(data if tty else streams.frame(open_fds[fd], data))
                except OSError:
                    conn = None


def inspect(req: Request) -> dict[str, Any]:
    record = _get(req)
    return {k: v for k, v in record.items() if not k.startswith("_")}


ROUTES = [
    ("POST", r"/containers/([^/]+)/exec", create),
    ("POST", r"/exec/([^/]+)/start", start),
    ("GET", r"/exec/([^/]+)/json", inspect),
]
