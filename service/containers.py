"""``/containers/...``: create, start, stop, kill, restart, wait, logs, attach, list,
inspect and remove, on the runner's container records.

Containers are started by the runner's detached monitor (as ``pybuild run -d``), which
owns them; ``AutoRemove`` (``run --rm``) is the service's job, since a client waiting
for ``condition=removed`` must still learn the exit code: a marker file under
``$ROOT/service/autoremove`` survives a killed service, whose successor finishes it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from runner import containers, lifecycle
from runner.containers import Container

from . import children, events, health, streams
from .http import ApiError, Request, api_error

_EXIT_CODES: dict[str, int] = {}  # exit codes of containers the service removed (for wait)
_WATCHED: set[str] = set()
_LOCK = threading.Lock()


def _autoremove_dir(root: str) -> str:
    return os.path.join(root, "service", "autoremove")


def _autoremove(root: str, cid: str) -> bool:
    return os.path.exists(os.path.join(_autoremove_dir(root), cid))


def _find(req: Request) -> Container:
    try:
        return containers.lookup(req.root, req.params[0])
    except containers.NoSuchContainer:
        raise ApiError(404, f"No such container: {req.params[0]}") from None


# ---- create -------------------------------------------------------------------------

def _run_options(body: dict[str, Any], name: str | None, platform: str | None):
    """docker's container config and HostConfig as ``pybuild run`` options."""
    from runner.create import RunOptions

    host = body.get("HostConfig") or {}
    entrypoint = body.get("Entrypoint")
    args = list(body.get("Cmd") or [])
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    if entrypoint:  # X + the rest of the list + Cmd, by docker's rule for a given entrypoint
        args = list(entrypoint[1:]) + args
        entrypoint = entrypoint[0]
    else:
        entrypoint = None
    publish = []
    for port, bindings in (host.get("PortBindings") or {}).items():
        for b in bindings or [{}]:
            ip, host_port = b.get("HostIp") or "", b.get("HostPort") or ""
            publish.append(":".join(p for p in (ip, host_port) if p) + (":" if ip or host_port else "") + port
                           if ip or host_port else port)
    mounts = []
    for m in host.get("Mounts") or []:
        fields = [f"type={m.get('Type', 'volume')}", f"target={m['Target']}"]
        if m.get("Source"):
            fields.append(f"source={m['Source']}")
        if m.get("ReadOnly"):
            fields.append("readonly")
        mounts.append(",".join(fields))
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    mode = host.get("NetworkMode") or ""
    network = None if mode in ("", "default") else mode
    aliases: list[str] = []
    ip = None
    for net_name, endpoint in endpoints.items():
        if net_name == "default":
            continue
        if network is None:
            network = net_name
        if net_name == network and endpoint:
            aliases += endpoint.get("Aliases") or []
            ip = ((endpoint.get("IPAMConfig") or {}).get("IPv4Address")) or None
    restart = host.get("RestartPolicy") or {}
    restart_text = restart.get("Name") or "no"
    if restart_text == "on-failure" and restart.get("MaximumRetryCount"):
        restart_text += f":{restart['MaximumRetryCount']}"
    nano = host.get("NanoCpus") or 0
    if not nano and host.get("CpuQuota") and host.get("CpuPeriod"):
        nano = host["CpuQuota"] * 1_000_000_000 // host["CpuPeriod"]
    return RunOptions(
        image=body.get("Image") or "", args=args, name=name, rm=False, detach=True,
        interactive=bool(body.get("OpenStdin")), tty=bool(body.get("Tty")), env=list(body.get("Env") or []),
        volumes=list(host.get("Binds") or []), mounts=mounts, tmpfs=[f"{k}:{v}" if v else k for k, v in
                                                                    (host.get("Tmpfs") or {}).items()],
        workdir=body.get("WorkingDir") or None, user=body.get("User") or None, entrypoint=entrypoint,
        hostname=body.get("Hostname") or None, network=network, network_aliases=aliases, ip=ip,
        memory=str(host["Memory"]) if host.get("Memory") else None,
        memory_swap=str(host["MemorySwap"]) if host.get("MemorySwap") else None,
        cpus=nano / 1e9 if nano else None, pids_limit=host.get("PidsLimit") or None,
        read_only=bool(host.get("ReadonlyRootfs")), cap_add=list(host.get("CapAdd") or []),
        cap_drop=list(host.get("CapDrop") or []), init=bool(host.get("Init")),
        stop_signal=body.get("StopSignal") or None, security_opt=list(host.get("SecurityOpt") or []),
        platform=platform or None, publish=publish, publish_all=bool(host.get("PublishAllPorts")),
        add_hosts=list(host.get("ExtraHosts") or []), dns=list(host.get("Dns") or []),
        dns_search=list(host.get("DnsSearch") or []), dns_options=list(host.get("DnsOptions") or []),
        volumes_from=list(host.get("VolumesFrom") or []),
        labels=[f"{k}={v}" for k, v in (body.get("Labels") or {}).items()],
        stop_timeout=body.get("StopTimeout"), pull="never",
        sysctls=[f"{k}={v}" for k, v in (host.get("Sysctls") or {}).items()], restart=restart_text,
        ulimits=[f"{u['Name']}={u['Soft']}:{u['Hard']}" for u in host.get("Ulimits") or []],
        group_add=list(host.get("GroupAdd") or []), privileged=bool(host.get("Privileged")),
        devices=[f"{d['PathOnHost']}:{d.get('PathInContainer') or d['PathOnHost']}" for d in host.get("Devices") or []],
    )


def create(req: Request) -> dict[str, Any]:
    from registry.errors import ImageNotFound
    from runner.create import create_container

    body = req.json()
    if not body.get("Image"):
        raise ApiError(400, "config cannot be empty in order to create a container")
    opts = _run_options(body, req.arg("name") or None, req.arg("platform"))
    try:
        container = create_container(req.root, opts)
    except ImageNotFound:
        raise ApiError(404, f"No such image: {body['Image']}") from None
    if (body.get("HostConfig") or {}).get("AutoRemove"):
        os.makedirs(_autoremove_dir(req.root), exist_ok=True)
        open(os.path.join(_autoremove_dir(req.root), container.id), "w").close()
    health.configure(container, body.get("Healthcheck"))
    events.emit("create", container)
    return {"Id": container.id, "Warnings": []}


# ---- start, stop, kill, restart, remove -------------------------------------------------

def start(req: Request) -> None:
    container = _find(req)
    if container.running:
        req.send(304)
        return
    start_container(req.root, container)
    req.send(204)


def start_container(root: str, container: Container) -> None:
    """Start under a detached monitor; an AutoRemove container gets its reaper."""
    try:
        lifecycle.run_detached(container, bool(container.config.get("interactive")))
    except Exception as err:
        _watch(root, container.id)  # records the failed start's exit (and removes an AutoRemove one)
        raise ApiError(400 if getattr(err, "exit_code", 125) in (126, 127) else 500, str(err)) from None
    events.emit("start", container)
    _watch(root, container.id)
    health.watch(root, container)


def _after_exit(root: str, cid: str) -> None:
    """Wait for the exit, say ``die``; an AutoRemove container is then removed (its code
    kept for waiters) with its anonymous volumes, and ``destroy`` said."""
    try:
        container = containers.lookup(root, cid)
    except containers.NoSuchContainer:
        container = None
    if container is not None:
        lifecycle.wait_exit(container)
        container.reload()
        code = int(container.state.get("exit_code") or 0)
        if _autoremove(root, cid):
            _EXIT_CODES[cid] = code
        events.emit("die", container, exitCode=str(code))
        if _autoremove(root, cid):
            lifecycle.remove_container(container, force=True, anonymous_volumes=True)
            events.emit("destroy", container)
    try:
        os.unlink(os.path.join(_autoremove_dir(root), cid))
    except FileNotFoundError:
        pass


def _watch(root: str, cid: str) -> None:
    """One thread per started container, until it exits (:func:`_after_exit`)."""
    with _LOCK:
        if cid in _WATCHED:
            return
        _WATCHED.add(cid)

    def run() -> None:
        try:
            _after_exit(root, cid)
        finally:
            with _LOCK:
                _WATCHED.discard(cid)

    threading.Thread(target=run, daemon=True, name=f"watch-{cid[:12]}").start()


def resume(root: str) -> None:
    """At the service's start: watch every running container (its ``die``), finish the
    AutoRemove a killed predecessor owed (exited ones now, running ones at their exit)."""
    for container in containers.all_containers(root):
        if container.running or container.state.get("status") == "restarting":
            _watch(root, container.id)
            if health.state(container) is not None:  # go on checking, from the last result
                health.watch_again(root, container)
    try:
        names = os.listdir(_autoremove_dir(root))
    except FileNotFoundError:
        return
    for cid in names:
        try:
            container = containers.lookup(root, cid)
        except containers.NoSuchContainer:
            os.unlink(os.path.join(_autoremove_dir(root), cid))
            continue
        if container.state.get("status") != "created":
            _watch(root, cid)


def stop(req: Request) -> None:
    container = _find(req)
    if not container.running and container.state.get("status") != "restarting":
        req.send(304)
        return
    timeout = req.arg("t") or req.arg("timeout")
    if timeout:
        seconds = float(timeout)
    else:
        configured = container.config.get("stop_timeout")
        seconds = 10 if configured is None else configured
    lifecycle.stop(container, seconds)
    req.send(204)


def kill(req: Request) -> None:
    from runner.imageconfig import parse_signal

    container = _find(req)
    sig = req.arg("signal") or "SIGKILL"
    try:
        number = int(sig) if sig.isdigit() else parse_signal(sig if sig.startswith("SIG") else "SIG" + sig)
    except Exception:
        raise ApiError(400, f"invalid signal: {sig}") from None
    if not container.running:
        raise ApiError(409, f"Cannot kill container: {req.params[0]}: container {container.id} is not running")
    lifecycle.signal_container(container, number)
    if number == signal.SIGKILL:
        lifecycle.wait_exit(container)
    req.send(204)


def restart(req: Request) -> None:
    container = _find(req)
    timeout = req.arg("t")
    if container.running:
        lifecycle.stop(container, float(timeout) if timeout else 10)
        container.reload()
    if os.path.exists(container.path(lifecycle.STOPPED_BY_USER)):
        os.unlink(container.path(lifecycle.STOPPED_BY_USER))
    start_container(req.root, container)
    req.send(204)


def delete(req: Request) -> None:
    container = _find(req)
    if container.running and not req.flag("force"):
        raise ApiError(409, f"You cannot remove a running container {container.id}. "
                            "Stop the container before attempting removal or force remove")
    lifecycle.remove_container(container, force=req.flag("force"), anonymous_volumes=req.flag("v"))
    try:
        os.unlink(os.path.join(_autoremove_dir(req.root), container.id))
    except FileNotFoundError:
        pass
    events.emit("destroy", container)
    req.send(204)


# ---- wait ------------------------------------------------------------------------------

def wait(req: Request) -> None:
    """Block until the condition holds; ``removed`` and ``next-exit`` as docker.  A container
    the service removed itself (AutoRemove) still answers with its exit code."""
    if req.params[0] in _EXIT_CODES:
        done = req.stream()
        done.json({"StatusCode": _EXIT_CODES[req.params[0]], "Error": None})
        done.close()
        return
    container = _find(req)
    condition = req.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise ApiError(400, f"invalid condition: {condition}")
    body = req.stream()
    before = container.state.get("finished_at") if container.state.get("status") == "exited" else None
    while True:
        container.reload()
        gone = containers.refresh(container) is None or container.state.get("status") == "removed"
        status = container.state.get("status")
        code = _EXIT_CODES.get(container.id, container.state.get("exit_code") or 0)
        if gone:
            break
        if condition == "not-running" and status not in ("running", "restarting"):
            break
        if condition == "next-exit" and status == "exited" and container.state.get("finished_at") != before:
            break
        time.sleep(0.05)
    body.json({"StatusCode": int(code or 0), "Error": None})
    body.close()


# ---- output ------------------------------------------------------------------------------

def logs(req: Request) -> None:
    container = _find(req)
    wanted = {s for s in ("stdout", "stderr") if req.flag(s)}
    if not wanted:
        raise ApiError(400, "Bad parameters: you must choose at least one stream")
    fh = streams.open_log(container)
    tty = bool(container.config.get("tty"))
    body = req.stream("application/vnd.docker.raw-stream")
    tail = req.arg("tail") or "all"
    timestamps = req.flag("timestamps")
    if fh is not None:
        with fh:
            past = list(streams.records(fh, False, lambda: False))
            if tail != "all" and tail.isdigit():
                past = past[len(past) - int(tail):] if int(tail) else []
            alive = streams.still_writing(container)
            following = streams.records(fh, True, lambda: alive() and container.state.get("status") != "created") \
                if req.flag("follow") else iter(())
            for record in [*past, *following] if not req.flag("follow") else _chain(past, following):
                if record["stream"] in wanted:
                    data = streams.payload(record, timestamps)
                    body.write(data if tty else streams.frame(record["stream"], data))
    body.close()


def _chain(first, second):
    yield from first
    yield from second


def attach(req: Request) -> None:
    """The container's output from now on (and, for a container not started yet, from its
    start) until it stops: framed without a TTY, raw with one."""
    container = _find(req)
    wanted = {s for s in ("stdout", "stderr") if req.flag(s)}
    fh = streams.open_log(container, create=container.state.get("status") == "created") if wanted else None
    if fh is not None and container.state.get("status") != "created" and not req.flag("logs"):
        fh.seek(0, os.SEEK_END)
    feed = _stdin_fifo(container) if req.flag("stdin") else None
    conn = req.hijack()
    tty = bool(container.config.get("tty"))
    if feed is not None:
        threading.Thread(target=_copy_stdin, args=(req.handler.rfile, feed, container), daemon=True).start()
    try:
        if fh is not None:
            with fh:
                for record in streams.records(fh, req.flag("stream", True), streams.still_writing(container)):
                    if record["stream"] in wanted:
                        data = streams.payload(record, False)
                        conn.sendall(data if tty else streams.frame(record["stream"], data))
    except (BrokenPipeError, ConnectionResetError):
        return
    try:
        import socket

        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _stdin_fifo(container: Container) -> int | None:
    """The write side of the FIFO the container's monitor reads stdin from (OpenStdin
    containers not started yet: the monitor opens it at the start)."""
    if not container.config.get("interactive") or container.state.get("status") != "created":
        return None
    path = container.path(lifecycle.STDIN_FIFO)
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)  # no reader yet: O_RDWR does not wait for one
    children.hide(fd)
    return fd


def _copy_stdin(rfile, fd: int, container: Container) -> None:
    """The client's stdin to the FIFO until the client closes its side (then EOF for the
    container); read through the request's buffer, which may already hold the first bytes.
    A FIFO drops what it holds when its last fd closes, so ours stays open until the
    monitor has opened its end (it does before the container starts)."""
    try:
        while True:
            data = rfile.read1(65536)
            if not data:
                break
            os.write(fd, data)
    except (OSError, ValueError):
        pass
    try:
        while container.state.get("status") == "created":
            time.sleep(0.05)
            container.reload()
    finally:
        children.release(fd)
        os.close(fd)


def resize(req: Request) -> None:
    """Accepted and ignored: the pty's master belongs to the container's monitor."""
    _find(req)
    req.send(200, b"", "text/plain")


# ---- list and inspect -----------------------------------------------------------------

def summary(container: Container) -> dict[str, Any]:
    """One row of ``GET /containers/json``."""
    from builder.commands._common import parse_time
    from builder.commands.ps import _status

    cfg, st = container.config, container.state
    net = st.get("network") or {}
    ports = [{"IP": m["hostIP"] or "0.0.0.0", "PrivatePort": int(m["containerPort"]),
              "PublicPort": int(m["hostPort"]), "Type": m["protocol"]}
             for m in (net.get("ports") or [] if container.running else [])]
    return {
        "Id": container.id, "Names": ["/" + container.name], "Image": cfg.get("image", ""),
        "ImageID": cfg.get("image_id", ""), "Command": " ".join(cfg.get("argv") or []),
        "Created": int(parse_time(cfg.get("created")) or 0), "Ports": ports, "Labels": cfg.get("labels") or {},
        "State": st.get("status", "created"), "Status": _status(st) + _health_suffix(container),
        "HostConfig": {"NetworkMode": cfg.get("network", "default")},
        "NetworkSettings": {"Networks": {name: {"IPAddress": n["ip"], "Gateway": n["gateway"],
                                                "MacAddress": n["mac"], "NetworkID": ""}
                                         for name, n in (net.get("networks") or {}).items()}},
        "Mounts": [{"Type": m["type"], "Source": m.get("source") or "", "Destination": m["target"],
                    "RW": not m.get("readonly")} for m in cfg.get("mounts", [])],
    }


def _health_suffix(container: Container) -> str:
    """docker ps's `` (healthy)``, `` (unhealthy)``, `` (health: starting)`` while running."""
    current = health.state(container) if container.running else None
    if current is None:
        return ""
    return " (health: starting)" if current["Status"] == "starting" else f" ({current['Status']})"


def _matches(container: Container, filters: dict[str, Any]) -> bool:
    def values(key: str) -> list[str]:
        raw = filters.get(key) or []
        return list(raw.keys()) if isinstance(raw, dict) else list(raw)

    labels = container.config.get("labels") or {}
    for spec in values("label"):
        key, eq, value = spec.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    if values("name") and not any(n.lstrip("/") in container.name for n in values("name")):
        return False
    if values("id") and not any(container.id.startswith(i) for i in values("id")):
        return False
    if values("status") and container.state.get("status") not in values("status"):
        return False
    if values("health") and (health.state(container) or {"Status": "none"})["Status"] not in values("health"):
        return False
    if values("exited") and str(container.state.get("exit_code")) not in values("exited") or (
            values("exited") and container.state.get("status") != "exited"):
        return False
    return True


def list_(req: Request) -> list[dict[str, Any]]:
    filters = req.json_query("filters")
    found = [c for c in reversed(containers.all_containers(req.root))
             if (req.flag("all") or c.running) and _matches(c, filters)]
    limit = int(req.arg("limit") or -1)
    return [summary(c) for c in (found[:limit] if limit > 0 else found)]


def inspect(req: Request) -> dict[str, Any]:
    from builder.commands._container_view import describe

    container = _find(req)
    out = describe(container)
    cfg = container.config
    out["HostConfig"]["AutoRemove"] = _autoremove(req.root, container.id)
    out["HostConfig"]["LogConfig"] = {"Type": "json-file", "Config": {}}
    out["HostConfig"]["Binds"] = [f"{m.get('source')}:{m['target']}" + (":ro" if m.get("readonly") else "")
                                  for m in cfg.get("mounts", []) if m.get("type") == "bind"]
    out["Config"].update({"Tty": bool(cfg.get("tty")), "OpenStdin": bool(cfg.get("interactive")),
                          "AttachStdout": False, "AttachStderr": False, "Entrypoint": None,
                          "ExposedPorts": {}, "Volumes": None})
    state_health = health.state(container)
    if state_health is not None:
        out["State"]["Health"] = state_health
    out["State"]["Dead"] = False
    out["State"]["Paused"] = False
    out["Driver"] = "overlay"
    out["Platform"] = "linux"
    out["LogPath"] = container.path("log.jsonl")
    return out


def prune(req: Request) -> dict[str, Any]:
    gone = []
    for c in containers.all_containers(req.root):
        if c.state.get("status") == "exited":
            try:
                lifecycle.remove_container(c)
                gone.append(c.id)
            except Exception as err:  # one that changed meanwhile stays
                raise api_error(err) from None
    return {"ContainersDeleted": gone, "SpaceReclaimed": 0}


ROUTES = [
    ("GET", r"/containers/json", list_),
    ("POST", r"/containers/create", create),
    ("POST", r"/containers/prune", prune),
    ("GET", r"/containers/([^/]+)/json", inspect),
    ("POST", r"/containers/([^/]+)/start", start),
    ("POST", r"/containers/([^/]+)/stop", stop),
    ("POST", r"/containers/([^/]+)/kill", kill),
    ("POST", r"/containers/([^/]+)/restart", restart),
    ("POST", r"/containers/([^/]+)/wait", wait),
    ("GET", r"/containers/([^/]+)/logs", logs),
    ("POST", r"/containers/([^/]+)/attach", attach),
    ("POST", r"/containers/([^/]+)/resize", resize),
    ("DELETE", r"/containers/([^/]+)", delete),
]
