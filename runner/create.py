"""Turn ``pybuild run`` options and an image into a container record.

Resolves the image (pulling it when missing), unpacks its snapshots and applies
docker's rules for entrypoint/cmd, env, workdir, user, stop signal and hostname.
"""

from __future__ import annotations

import os

from .errors import RunError

from . import cgroups, containers, imageconfig, images, security
from .lifecycle import parse_security_opts, parse_tmpfs, parse_volume
from .spec import REQUIRED, Record


class RunOptions(Record):
    """The options of ``pybuild run``, with docker's names (keyword arguments).

    ``image``, ``args`` (command), ``name``, ``rm``, ``detach``, ``interactive``, ``tty``,
    ``env``, ``env_files``, ``volumes``, ``tmpfs``, ``workdir``, ``user``, ``entrypoint``,
    ``hostname``, ``network``, ``memory``, ``memory_swap`` (strings as typed),
    ``cpus``, ``pids_limit``, ``read_only``, ``cap_add``, ``cap_drop``, ``init``,
    ``stop_signal``, ``security_opt``, ``platform`` (``os/arch[/variant]`` to pick from a
    multi-platform image).
    """

    _FIELDS = {
        "image": REQUIRED, "args": list, "name": None, "rm": False, "detach": False, "interactive": False,
        "tty": False, "env": list, "env_files": list, "volumes": list, "tmpfs": list, "workdir": None,
        "user": None, "entrypoint": None, "hostname": None, "network": "host", "memory": None,
        "memory_swap": None, "cpus": None, "pids_limit": None, "read_only": False, "cap_add": list,
        "cap_drop": list, "init": False, "stop_signal": None, "security_opt": list, "platform": None,
    }


def _limits(opts: RunOptions) -> dict:
    memory = imageconfig.parse_size(opts.memory, "memory") if opts.memory else None
    swap = None
    if opts.memory_swap:
        swap = -1 if opts.memory_swap.strip() == "-1" else imageconfig.parse_size(opts.memory_swap, "memory-swap")
        if memory is None:
            raise RunError("--memory-swap needs -m/--memory as well")
        if swap != -1 and swap < memory:
            raise RunError("--memory-swap must be at least --memory (or -1 for unlimited swap)")
    if memory is not None and memory < 6 << 20:
        raise RunError("minimum memory limit allowed is 6MB")
    if opts.cpus is not None and opts.cpus <= 0:
        raise RunError("--cpus must be a positive number such as 0.5")
    return {"memory": memory, "memory_swap": swap, "cpus": opts.cpus, "pids": opts.pids_limit}


def create_container(root: str, opts: RunOptions) -> containers.Container:
    """Resolve the image and make the container record (not started)."""
    if os.geteuid() != 0:
        raise RunError("pybuild run needs root (namespaces, mounts, cgroups); rootless containers are not supported")
    if opts.network not in ("host", "none"):
        raise RunError(f"network {opts.network!r} is not supported: use host or none")
    try:
        security.capability_set(opts.cap_add, opts.cap_drop)
    except security.SecurityError as err:
        raise RunError(str(err)) from None
    if opts.workdir and not opts.workdir.startswith("/"):
        raise RunError(f"the working directory '{opts.workdir}' is invalid, it needs to be an absolute path")
    limits = _limits(opts)
    security_opts = parse_security_opts(opts.security_opt)
    image_id, cfg, lowerdirs = images.resolve(root, opts.image, opts.platform)
    argv = imageconfig.command_line(cfg, opts.args, opts.entrypoint)
    if not argv:
        raise RunError("no command specified: the image has no Cmd or Entrypoint; give one after the image name")
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
        "image_id": image_id,
        "lowerdirs": lowerdirs,
        "argv": argv,
        "env": env,
        "cwd": opts.workdir or cfg.get("WorkingDir") or "/",
        "user": opts.user if opts.user is not None else (cfg.get("User") or ""),
        "hostname": hostname,
        "network": opts.network,
        "mounts": [m.to_json() for m in mounts],
        "readonly_rootfs": opts.read_only,
        "cap_add": list(opts.cap_add),
        "cap_drop": list(opts.cap_drop),
        "init": opts.init,
        **security_opts,
        "tty": opts.tty,
        "stop_signal": imageconfig.parse_signal(stop_signal),
        "limits": limits,
        "cgroup_version": cgroups.detect(),
        "rm": opts.rm,
    }
    return containers.create(root, cid, config)
