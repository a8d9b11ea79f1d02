"""Turn ``pybuild run`` options and an image into a container record.

Resolves the image (pulling it when missing), unpacks its snapshots and applies
docker's rules for entrypoint/cmd, env, workdir, user, stop signal and hostname.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from registry.errors import ImageNotFound, PybuildError

from . import cgroups, containers, imageconfig, security
from .lifecycle import parse_tmpfs, parse_volume
from .snapshots import Snapshots


@dataclass
class RunOptions:
    """The options of ``pybuild run`` (docker's names)."""

    image: str
    args: list[str] = field(default_factory=list)
    name: str | None = None
    rm: bool = False
    detach: bool = False
    interactive: bool = False
    tty: bool = False
    env: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    hostname: str | None = None
    network: str = "host"
    memory: str | None = None
    memory_swap: str | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    read_only: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    init: bool = False
    stop_signal: str | None = None


def load_image(root: str, name: str):
    """``(store, image)``, pulling the image when the store lacks it."""
    from registry.store import Store

    store = Store(root)
    try:
        return store, store.image(name)
    except ImageNotFound:
        pass
    try:
        from registry.remote.pull import pull_image
    except ImportError:
        raise ImageNotFound(f"image {name} is not in the store and pulling is not available; 'pybuild import' or 'pybuild load' it") from None
    print(f"Unable to find image '{name}' locally", file=sys.stderr)
    return store, pull_image(store, name).image


def _limits(opts: RunOptions) -> dict:
    memory = imageconfig.parse_size(opts.memory, "memory") if opts.memory else None
    swap = None
    if opts.memory_swap:
        swap = -1 if opts.memory_swap.strip() == "-1" else imageconfig.parse_size(opts.memory_swap, "memory-swap")
        if memory is None:
            raise PybuildError("--memory-swap needs -m/--memory as well")
        if swap != -1 and swap < memory:
            raise PybuildError("--memory-swap must be at least --memory (or -1 for unlimited swap)")
    if memory is not None and memory < 6 << 20:
        raise PybuildError("minimum memory limit allowed is 6MB")
    if opts.cpus is not None and opts.cpus <= 0:
        raise PybuildError("--cpus must be a positive number such as 0.5")
    return {"memory": memory, "memory_swap": swap, "cpus": opts.cpus, "pids": opts.pids_limit}


def create_container(root: str, opts: RunOptions) -> containers.Container:
    """Resolve the image and make the container record (not started)."""
    if opts.network not in ("host", "none"):
        raise PybuildError(f"network {opts.network!r} is not supported: use host or none")
    try:
        security.capability_set(opts.cap_add, opts.cap_drop)
    except security.SecurityError as err:
        raise PybuildError(str(err)) from None
    limits = _limits(opts)
    store, image = load_image(root, opts.image)
    cfg = image.config.get("config") or {}
    argv = imageconfig.command_line(cfg, opts.args, opts.entrypoint)
    if not argv:
        raise PybuildError("no command specified: the image has no Cmd or Entrypoint; give one after the image name")
    env_items = [item for f in opts.env_files for item in imageconfig.read_env_file(f)] + list(opts.env)
    cid = containers.new_id()
    hostname = opts.hostname or (os.uname().nodename if opts.network == "host" else cid[:12])
    env = [f"HOSTNAME={hostname}"] + imageconfig.merge_env(cfg.get("Env") or [], env_items, dict(os.environ))
    if opts.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    mounts = [parse_volume(v) for v in opts.volumes] + [parse_tmpfs(t) for t in opts.tmpfs]
    stop_signal = opts.stop_signal or cfg.get("StopSignal") or "SIGTERM"
    config = {
        "name": opts.name,
        "image": opts.image,
        "image_id": image.id,
        "lowerdirs": [str(p) for p in Snapshots(root).ensure(store, image)],
        "argv": argv,
        "env": env,
        "cwd": opts.workdir or cfg.get("WorkingDir") or "/",
        "user": opts.user if opts.user is not None else (cfg.get("User") or ""),
        "hostname": hostname,
        "network": opts.network,
        "mounts": [m.__dict__ for m in mounts],
        "readonly_rootfs": opts.read_only,
        "cap_add": list(opts.cap_add),
        "cap_drop": list(opts.cap_drop),
        "init": opts.init,
        "tty": opts.tty,
        "stop_signal": imageconfig.parse_signal(stop_signal),
        "limits": limits,
        "cgroup_version": cgroups.detect(),
        "rm": opts.rm,
    }
    return containers.create(root, cid, config)
