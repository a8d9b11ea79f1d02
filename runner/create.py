"""Turn ``pybuild run`` options and an image into a container record.

Resolves the image (pulling it when missing), unpacks its snapshots and applies
docker's rules for entrypoint/cmd, env, workdir, user, stop signal and hostname.
"""

from __future__ import annotations

import os

from . import cgroups, containers, imageconfig, images, security
from .errors import RunError
from .lifecycle import parse_security_opts, parse_tmpfs, parse_volume
from .spec import REQUIRED, Mount, Record


class RunOptions(Record):
    """The options of ``pybuild run``, with docker's names (keyword arguments).

    ``image``, ``args`` (command), ``name``, ``rm``, ``detach``, ``interactive``, ``tty``,
    ``env``, ``env_files``, ``volumes``, ``tmpfs``, ``workdir``, ``user``, ``entrypoint``,
    ``hostname``, ``network``, ``memory``, ``memory_swap`` (strings as typed),
    ``cpus``, ``pids_limit``, ``read_only``, ``cap_add``, ``cap_drop``, ``init``,
    ``stop_signal``, ``security_opt``, ``platform`` (``os/arch[/variant]`` to pick from a
    multi-platform image); networking: ``publish`` (``-p`` values), ``publish_all``,
    ``network_aliases``, ``ip``, ``add_hosts``, ``dns``, ``dns_search``, ``dns_options``;
    storage: ``mounts`` (``--mount`` values), ``volumes_from``; ``labels``, ``label_files``,
    ``stop_timeout``, ``pull`` (always, missing, never), ``sysctls`` (``K=V``, ``net.*``),
    ``restart`` (no, on-failure[:N], always, unless-stopped), ``ulimits`` (``nofile=S[:H]``),
    ``group_add``, ``devices``, ``privileged``.
    ``network`` None means ``$PYBUILD_NETWORK`` or ``bridge`` (docker's default).
    """

    _FIELDS = {
        "image": REQUIRED, "args": list, "name": None, "rm": False, "detach": False, "interactive": False,
        "tty": False, "env": list, "env_files": list, "volumes": list, "tmpfs": list, "workdir": None,
        "user": None, "entrypoint": None, "hostname": None, "network": None, "memory": None,
        "memory_swap": None, "cpus": None, "pids_limit": None, "read_only": False, "cap_add": list,
        "cap_drop": list, "init": False, "stop_signal": None, "security_opt": list, "platform": None,
        "publish": list, "publish_all": False,
        "network_aliases": list, "ip": None, "add_hosts": list, "dns": list, "dns_search": list, "dns_options": list,
        "mounts": list, "volumes_from": list, "labels": list, "label_files": list, "stop_timeout": None,
        "pull": "missing", "sysctls": list, "restart": "no", "ulimits": list, "group_add": list, "devices": list,
        "privileged": False,
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
    if cgroups.detect() == "none":
        for flag, value in (("--memory", memory), ("--cpus", opts.cpus), ("--pids-limit", opts.pids_limit)):
            if value is not None:
                raise RunError(cgroups.ROOTLESS_NO_LIMITS.format(flag=flag, version=cgroups.host_version()))
    return {"memory": memory, "memory_swap": swap, "cpus": opts.cpus, "pids": opts.pids_limit}


def create_container(root: str, opts: RunOptions) -> containers.Container:
    """Resolve the image and make the container record (not started)."""
    if os.geteuid() != 0:
        raise RunError("pybuild run needs root (namespaces, mounts, cgroups); rootless containers are not supported")
    try:
        security.capability_set(opts.cap_add, opts.cap_drop)
    except security.SecurityError as err:
        raise RunError(str(err)) from None
    if opts.workdir and not opts.workdir.startswith("/"):
        raise RunError(f"the working directory '{opts.workdir}' is invalid, it needs to be an absolute path")
    limits = _limits(opts)
    security_opts = parse_security_opts(opts.security_opt)
    network = opts.network or os.environ.get("PYBUILD_NETWORK") or "bridge"
    net_config = _network_config(root, opts, network)
    if opts.pull not in ("always", "missing", "never"):
        raise RunError(f"invalid --pull {opts.pull!r}: use always, missing or never")
    sysctls = _sysctls(opts.sysctls, network)
    restart = _restart(opts)
    rlimits = _ulimits(opts.ulimits)
    labels_given = _labels(opts.labels, opts.label_files)
    image_id, cfg, lowerdirs = images.resolve(root, opts.image, opts.platform, opts.pull)
    if opts.publish_all and "ports" in net_config:
        from .network import ports

        net_config["ports"] += ports.exposed(cfg.get("ExposedPorts"))
    argv = imageconfig.command_line(cfg, opts.args, opts.entrypoint)
    if not argv:
        raise RunError("no command specified: the image has no Cmd or Entrypoint; give one after the image name")
    env_items = [item for f in opts.env_files for item in imageconfig.read_env_file(f)] + list(opts.env)
    cid = containers.new_id()
    hostname = opts.hostname or net_config.pop("hostname", None) or (
        os.uname().nodename if network == "host" else cid[:12])
    env = [f"HOSTNAME={hostname}"] + imageconfig.merge_env(cfg.get("Env") or [], env_items, dict(os.environ))
    if opts.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    mounts, volume_names, anonymous = _mounts(root, opts)
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
        "network": network,
        **net_config,
        "mounts": [m.to_json() for m in mounts],
        "volume_names": volume_names,
        "anonymous_volumes": anonymous,
        "readonly_rootfs": opts.read_only,
        "cap_add": _bounding_caps() if opts.privileged else list(opts.cap_add),
        "cap_drop": ["ALL"] if opts.privileged else list(opts.cap_drop),
        "init": opts.init,
        **security_opts,
        "tty": opts.tty,
        "interactive": opts.interactive,  # OpenStdin: an API start connects the attached client's stdin
        "stop_signal": imageconfig.parse_signal(stop_signal),
        "limits": limits,
        "cgroup_version": cgroups.detect(),
        "rm": opts.rm,
        "labels": {**(cfg.get("Labels") or {}), **labels_given},
        "stop_timeout": opts.stop_timeout,
        "sysctls": sysctls,
        "restart": restart,
        "rlimits": rlimits,
        "group_add": list(opts.group_add),
        "devices": _devices(opts.devices) + (_host_devices() if opts.privileged else []),
        "privileged": opts.privileged,
        **({"seccomp": False} if opts.privileged else {}),
    }
    return containers.create(root, cid, config)


def _network_config(root: str, opts: RunOptions, network: str) -> dict:
    """The ``networks``, ``ports``, ``add_hosts`` and ``dns`` of the container record, checked."""
    from . import network as net

    scoped = opts.network_aliases or opts.ip
    if not net.needs_setup(network):
        if scoped:
            raise RunError("--network-alias and --ip need a user-defined network (pybuild network create)")
        if network.startswith("container:"):
            if opts.publish or opts.publish_all or opts.hostname or opts.add_hosts or opts.dns or opts.dns_search:
                raise RunError("conflicting options: -p, -P, --hostname, --add-host and --dns cannot be used "
                               "with --network container:ID (they belong to that container)")
            other = containers.lookup(root, network.partition(":")[2])
            if not other.running:
                raise RunError(f"cannot join the network of container {other.name}: it is not running")
            return {"network_of": other.id, "hostname": other.config["hostname"]}
        return {}
    from base import rootless

    from .network import config as netconfig
    from .network import ports

    if scoped and network == netconfig.DEFAULT:
        raise RunError("--network-alias and --ip need a user-defined network, not the default bridge")
    if rootless.active():  # the default network is a user-mode stack (pasta/slirp4netns)
        from .network import rootless_backend

        if network != netconfig.DEFAULT:
            rootless_backend.no_user_networks()
        rootless_backend.tool()  # neither installed: say so now, not at start
    else:
        try:
            netconfig.load(root, network)  # a missing network fails now, not at start
        except netconfig.NoSuchNetwork as err:
            raise RunError(str(err)) from None  # docker run's 125, not network inspect's 1
    for item in opts.add_hosts:
        name, _, address = item.partition(":")
        if not name or not _is_ip(address):
            raise RunError(f"invalid --add-host {item!r}: use NAME:IP")
    for address in [*opts.dns, *([opts.ip] if opts.ip else [])]:
        if not _is_ip(address):
            raise RunError(f"invalid IP address {address!r}")
    mappings = [m for spec in opts.publish for m in ports.parse(spec)]
    return {"networks": [{"name": network, "aliases": list(opts.network_aliases), "ip": opts.ip}],
            "ports": mappings, "add_hosts": list(opts.add_hosts),
            "dns": {"servers": list(opts.dns), "search": list(opts.dns_search), "options": list(opts.dns_options)}}


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _mounts(root: str, opts: RunOptions) -> tuple[list, list[str], list[str]]:
    """``--volumes-from``, ``-v`` (host paths, named and anonymous volumes), ``--mount``, ``--tmpfs``:
    the mounts, the volumes used, the anonymous ones among them (``--rm`` removes those)."""
    from . import volumes

    mounts, names, anonymous = [], [], []
    for ref in opts.volumes_from:
        ref, _, mode = ref.partition(":")
        if mode not in ("", "ro", "rw"):
            raise RunError(f"invalid --volumes-from mode {mode!r}: use ro or rw")
        other = containers.lookup(root, ref)
        for m in other.config["mounts"]:
            if m["type"] == "bind":
                mounts.append(Mount(**dict(m, readonly=m["readonly"] if not mode else mode == "ro", options="")))
        names += other.config.get("volume_names", [])
    for text in opts.volumes:
        parts = text.split(":")
        if len(parts) == 1 and text.startswith("/"):  # -v /data: an anonymous volume
            info = volumes.create(root)
            mounts.append(volumes.volume_mount(root, info["Name"], text, False))
            names.append(info["Name"])
            anonymous.append(info["Name"])
        elif len(parts) in (2, 3) and parts[0] and not parts[0].startswith((("/", ".", "~"))):
            mode = parts[2] if len(parts) == 3 else "rw"
            if mode not in ("ro", "rw") or not parts[1].startswith("/"):
                raise RunError(f"invalid volume {text!r}: use -v NAME:/container/path[:ro]")
            mounts.append(volumes.volume_mount(root, parts[0], parts[1], mode == "ro"))
            names.append(parts[0])
        else:
            mounts.append(parse_volume(text))
    for text in opts.mounts:
        mount, name = volumes.parse_mount(root, text)
        mounts.append(mount)
        names += [name] if name else []
        anonymous += [name] if name and "source=" not in text and "src=" not in text else []
    mounts += [parse_tmpfs(t) for t in opts.tmpfs]
    return mounts, names, anonymous


def _labels(items: list[str], files: list[str]) -> dict[str, str]:
    """``-l K[=V]`` and ``--label-file`` lines, as docker reads them: ``#`` comments and blank
    lines skipped; a file line without ``=`` takes the variable's value from the
    environment, or is dropped when it is not set (``-l K`` alone is ``K=""``)."""
    lines = []
    for line in (item for path in files for item in imageconfig.read_env_file(path, "label file")):
        if "=" in line:
            lines.append(line)
        elif line in os.environ:
            lines.append(f"{line}={os.environ[line]}")
    return {key: value for key, _, value in (item.partition("=") for item in lines + list(items))}


def _sysctls(items: list[str], network: str) -> dict[str, str]:
    """``--sysctl net.*=V``: applied in the container's own network namespace before it starts."""
    found = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise RunError(f"invalid --sysctl {item!r}: use KEY=VALUE")
        if not key.startswith("net."):
            raise RunError(f"--sysctl {key} is not supported: only the network namespace's net.* sysctls are")
        if network in ("host", "none") or network.startswith("container:"):
            raise RunError(f"--sysctl {key} needs a network namespace of the container's own: not --network {network}")
        if "/" in key or ".." in key.split("."):
            raise RunError(f"invalid --sysctl {key!r}")
        found[key] = value
    return found


def _restart(opts: RunOptions) -> dict:
    """``--restart`` as ``{"name", "max"}``; the detached monitor is the only supervisor there is."""
    name, _, count = (opts.restart or "no").partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped") or (count and name != "on-failure"):
        raise RunError(f"invalid restart policy {opts.restart!r}: use no, on-failure[:N], always or unless-stopped")
    if count and (not count.isdigit()):
        raise RunError(f"invalid restart count {count!r}: use a whole number")
    if name != "no" and opts.rm:
        raise RunError("conflicting options: --restart and --rm")
    if name != "no" and not opts.detach:
        raise RunError("--restart needs -d: with no daemon, the detached monitor is what restarts a container")
    return {"name": name, "max": int(count or 0)}


_ULIMITS = {"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
            "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
            "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
            "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
            "stack": "RLIMIT_STACK", "as": "RLIMIT_AS"}


def _ulimits(items: list[str]) -> dict[str, list[int]]:
    """``--ulimit NAME=SOFT[:HARD]`` (docker's names); never above the host's hard limit."""
    import resource

    found = {}
    for item in items:
        name, _, values = item.partition("=")
        soft_text, _, hard_text = values.partition(":")
        if name not in _ULIMITS:
            raise RunError(f"invalid --ulimit {item!r}: unknown limit {name!r} (e.g. nofile, nproc, core, stack)")
        try:
            soft = int(soft_text)
            hard = int(hard_text or soft_text)
        except ValueError:
            raise RunError(f"invalid --ulimit {item!r}: use NAME=SOFT[:HARD] with whole numbers (-1: unlimited)") from None
        soft = resource.RLIM_INFINITY if soft == -1 else soft
        hard = resource.RLIM_INFINITY if hard == -1 else hard
        if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
            raise RunError(f"invalid --ulimit {item!r}: the soft limit is above the hard limit")
        host_hard = resource.getrlimit(getattr(resource, _ULIMITS[name]))[1]
        if host_hard != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard > host_hard):
            raise RunError(f"--ulimit {item}: the hard limit is above this host's ({host_hard}); "
                           f"use at most {name}={min(soft, host_hard)}:{host_hard}")
        found[_ULIMITS[name]] = [soft, hard]
    return found


def _devices(items: list[str]) -> list[list[str]]:
    """``--device HOST[:CONTAINER[:PERMS]]``: a host device node, bound under the container's /dev."""
    import stat

    found = []
    for item in items:
        parts = item.split(":")
        host = parts[0]
        target = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
        try:
            mode = os.stat(host).st_mode
        except OSError:
            raise RunError(f"--device {item}: no such device on this host: {host}") from None
        if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            raise RunError(f"--device {item}: {host} is not a device node")
        norm = os.path.normpath(target)
        if not norm.startswith("/dev/") or norm in ("/dev/pts", "/dev/shm", "/dev/mqueue") or "/.." in norm:
            raise RunError(f"--device {item}: the container path must be a file under /dev")
        found.append([host, norm])
    return found


def _host_devices() -> list[list[str]]:
    """``--privileged``: every device node of the host's /dev (but the standard ones, bound anyway)."""
    import stat

    skip = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx",
            "/dev/console"}
    found = []
    for folder, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in ("/dev/pts", "/dev/shm", "/dev/mqueue")]
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and path not in skip:
                found.append([path, path])
    return found


def _bounding_caps() -> list[str]:
    """``--privileged``: every capability this pybuild may hand on (its bounding set), as podman
    does; docker asks for all of them and fails where the host withholds one."""
    with open("/proc/self/status") as fh:
        mask = next(int(line.split()[1], 16) for line in fh if line.startswith("CapBnd:"))
    return [name for bit, name in enumerate(security.CAPABILITIES) if mask >> bit & 1]
