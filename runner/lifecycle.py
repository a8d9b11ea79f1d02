"""Container lifecycle: create, run (foreground or detached), stop, kill, exec, wait.

The process that starts a container owns it and records its exit: the foreground
``pybuild run`` itself, or for ``-d`` a monitor (double-forked, in its own session)
that also copies the output into the log.  Both remove the cgroup when the container
exits; mounts live in the container's mount namespace and vanish with it.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from registry.errors import PybuildError

from . import cgroups, containers, sandbox
from .containers import Container, now
from .errors import RunError
from .procinfo import alive, proc_start_time
from .spec import Mount, SandboxSpec

TYPE_CHECKING = False  # typing itself is not imported on the run path
if TYPE_CHECKING:
    from typing import Any

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class _Forwarder:
    """Forwards INT, TERM, HUP, QUIT, USR1, USR2 to the container; installed before it
    starts, so a signal that arrives meanwhile is held and delivered once it runs."""

    def __init__(self) -> None:
        self.proc: sandbox.Process | None = None
        self.pending: list[int] = []
        for sig in _FORWARDED:
            signal.signal(sig, self._handle)

    def _handle(self, sig: int, _frame: object) -> None:
        if self.proc is None:
            self.pending.append(sig)
        else:
            self.proc.signal(sig)

    def attach(self, proc: sandbox.Process) -> None:
        """Start forwarding to ``proc`` (and deliver what was held)."""
        self.proc = proc
        for sig in self.pending:
            proc.signal(sig)
        self.pending.clear()


def parse_volume(text: str) -> Mount:
    """``-v HOST:CTR[:ro|rw]`` (absolute host paths; a missing host dir is created)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise RunError(f"invalid volume {text!r}: use -v /host/path:/container/path[:ro]")
    host, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if not host.startswith("/"):
        raise RunError(f"invalid volume {text!r}: {host!r} is not a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*); "
                       "give an absolute path for a host directory")
    if not target.startswith("/"):
        raise RunError(f"invalid volume {text!r}: the container path must be absolute")
    if mode not in ("ro", "rw"):
        raise RunError(f"invalid volume mode {mode!r} in {text!r}: use ro or rw")
    os.makedirs(host, exist_ok=True) if not os.path.exists(host) else None
    return Mount(target=target, type="bind", source=os.path.realpath(host), readonly=mode == "ro")


def parse_tmpfs(text: str) -> Mount:
    """``--tmpfs PATH[:OPTIONS]``."""
    target, _, options = text.partition(":")
    if not target.startswith("/"):
        raise RunError(f"invalid tmpfs {text!r}: the container path must be absolute")
    return Mount(target=target, type="tmpfs", options=options or "mode=1777")


def parse_security_opts(options: list[str]) -> dict[str, bool]:
    """docker's ``--security-opt``: ``seccomp=unconfined`` and ``no-new-privileges[=true|false]``.

    Returns the container-config keys ``seccomp`` and ``no_new_privs``.  Custom seccomp
    profiles, AppArmor and SELinux labels are refused rather than silently ignored.
    """
    out = {"seccomp": True, "no_new_privs": True}
    for text in options:
        key, sep, value = text.partition("=")
        if not sep:
            key, sep, value = text.partition(":")  # docker's older colon form
        if key == "seccomp" and value == "unconfined":
            out["seccomp"] = False
        elif key == "no-new-privileges" and value in ("", "true", "false"):
            out["no_new_privs"] = value != "false"
        elif key == "seccomp":
            raise RunError(f"invalid --security-opt {text!r}: custom seccomp profiles are not supported; "
                           "use seccomp=unconfined or leave the default")
        else:
            raise RunError(f"invalid --security-opt {text!r}: use seccomp=unconfined or no-new-privileges[=true|false]")
    return out


def spec_for(container: Container, stdin: int | None, stdout: int, stderr: int,
             net: dict[str, str] | None = None) -> SandboxSpec:
    """The sandbox spec of a container record (``net``: what :func:`_network_up` gave)."""
    cfg = container.config
    net = net or {}
    cg = container.cgroup()
    return SandboxSpec(
        argv=cfg["argv"], lowerdirs=cfg["lowerdirs"], upperdir=container.path("upper"),
        workdir=container.path("work"), state_dir=container.path("state"), env=cfg["env"], cwd=cfg["cwd"],
        user=cfg["user"], hostname=cfg["hostname"], network=cfg["network"],
        mounts=[Mount(**m) for m in cfg["mounts"]], readonly_rootfs=cfg["readonly_rootfs"],
        cap_add=cfg["cap_add"], cap_drop=cfg["cap_drop"], init=cfg["init"],
        seccomp=cfg.get("seccomp", True), no_new_privs=cfg.get("no_new_privs", True),
        cgroup_procs=cg.procs_files(), cgroup_dirs=cg.dirs(), stdin=stdin, stdout=stdout, stderr=stderr,
        tty=cfg["tty"], rlimits=cfg.get("rlimits", {}), group_add=cfg.get("group_add", []),
        devices=cfg.get("devices", []), privileged=cfg.get("privileged", False),
        netns=net.get("netns", ""), hosts=net.get("hosts"), resolv_conf=net.get("resolv_conf"),
    )


def _network_up(container: Container) -> dict[str, str]:
    """Namespace and attachments of a bridge or user-defined network (nothing for host/none)."""
    mode = container.config["network"]
    if mode in ("host", "none"):
        return {}
    from . import network

    if mode.startswith("container:"):
        return network.backend().shared(container.root, mode.partition(":")[2])
    return network.backend().setup(container)


def _network_started(container: Container) -> None:
    if network_attached(container):
        from . import network

        network.backend().started(container)


def network_attached(container: Container) -> bool:
    """Whether the container has attachments of its own to tear down."""
    mode = container.config.get("network", "host")
    return mode not in ("host", "none") and not mode.startswith("container:")


def _network_down(container: Container) -> None:
    if network_attached(container):
        from . import network

        network.backend().teardown_background(container.root, container.id)


def _make_cgroup(container: Container) -> cgroups.Cgroup:
    limits = container.config["limits"]
    try:
        return cgroups.create(container.id, memory=limits.get("memory"), memory_swap=limits.get("memory_swap"),
                              cpus=limits.get("cpus"), pids=limits.get("pids"), version=container.config["cgroup_version"])
    except cgroups.CgroupError as err:
        raise RunError(str(err)) from None


def _finish(container: Container, proc: sandbox.Process | None, code: int, cg: cgroups.Cgroup) -> tuple[int, bool]:
    """Record the exit, remove the cgroup (and the container with --rm): (code, oom)."""
    oom = cg.oom_killed() if proc is not None else False
    cg.remove()
    _network_down(container)
    if container.config.get("rm"):
        containers.remove(container, background=True)
        if container.config.get("anonymous_volumes"):  # docker run --rm removes them too
            from . import volumes

            for name in container.config["anonymous_volumes"]:
                volumes.remove(container.root, name, force=True)
    else:
        container.save_state(status="exited", exit_code=code, oom_killed=oom, finished_at=now())
    return code, oom


def _own(container: Container) -> None:
    """Mark this process as the one that records the container's exit."""
    container.save_state(owner_pid=os.getpid(), owner_start=proc_start_time(os.getpid()))


def _started(container: Container, proc: sandbox.Process) -> None:
    container.save_state(status="running", pid=proc.pid, pid_start=proc_start_time(proc.pid), started_at=now())


def oom_message(container: Container) -> str:
    """What the user reads when the memory limit killed the container."""
    limit = container.config["limits"].get("memory") or 0
    size = f"{limit / (1 << 20):g} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"
    return f"container {container.name} was killed: it hit its memory limit ({size}); raise -m/--memory"


def run_foreground(container: Container, interactive: bool) -> int:
    """Run attached to this terminal; signals are forwarded; returns the exit code."""
    forwarder = _Forwarder()
    cg = _make_cgroup(container)
    proc = None
    code = 125
    log = None
    master = None
    try:
        net = _network_up(container)
        if container.config["tty"]:
            spec = spec_for(container, None, 1, 2, net)
        elif container.config.get("rm"):
            spec = spec_for(container, 0 if interactive else None, 1, 2, net)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            spec = spec_for(container, 0 if interactive else None, out_w, err_w, net)
        try:
            proc = sandbox.start(spec)
        except sandbox.SandboxError as err:
            code = err.exit_code  # recorded (with the reason) by _finish below
            container.state["error"] = str(err)
            raise
        forwarder.attach(proc)
        _started(container, proc)
        _network_started(container)
        master = proc.console
        if master is not None:
            from . import stdio  # output relaying: not needed by a plain --rm run

            stdio.follow_winsize(0, master)
            log = None if container.config.get("rm") else stdio.LogWriter(container.path(stdio.LOG_FILE))
            with stdio.RawTerminal(0):
                stdio.relay({master: ("stdout", 1)}, log, (0, master) if interactive else None)
        elif not container.config.get("rm"):
            from . import stdio

            os.close(out_w)
            os.close(err_w)
            log = stdio.LogWriter(container.path(stdio.LOG_FILE))
            stdio.relay({out_r: ("stdout", 1), err_r: ("stderr", 2)}, log)
        code = proc.wait()
    finally:
        if proc is not None and proc.returncode is None:
            cg.kill_all()
            if not cg.dirs():  # no cgroup (rootless): pid 1's end ends its pid namespace
                proc.signal(signal.SIGKILL)
            code = proc.wait()
        if log is not None:
            log.close()
        code, oom = _finish(container, proc, code, cg)
    if oom and code == 137:  # the command itself was the victim, not just one of its children
        print(f"pybuild: {oom_message(container)}", file=sys.stderr)
    return code


def run_detached(container: Container, interactive: bool) -> None:
    """Start under a monitor process that outlives this one; returns once it runs."""
    report_r, report_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(report_r)
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _monitor(container, report_w, interactive)
        finally:
            os._exit(125)
    os.close(report_w)
    os.waitpid(child, 0)
    with os.fdopen(report_r, "rb") as fh:
        message = fh.read().decode(errors="replace")
    if message != "ok":
        code, _, text = message.partition(" ")
        err = PybuildError(text or "the container monitor died before the container started")
        err.exit_code = int(code) if code.isdigit() else 125
        raise err


def _monitor(container: Container, report: int, interactive: bool) -> None:
    """The detached container's owner: start it, log its output, record its exit."""
    null = os.open("/dev/null", os.O_RDWR)
    _own(container)
    feed = _stdin_feed(container, interactive)  # before the start: an attached client may be done already
    cg = None
    try:
        cg = _make_cgroup(container)
        net = _network_up(container)
        in_w = None
        if container.config["tty"]:
            spec = spec_for(container, None, null, null, net)
            pipes = []
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r, in_w = os.pipe() if interactive else (null, None)
            spec = spec_for(container, in_r, out_w, err_w, net)
            pipes = [out_w, err_w] + ([in_r] if interactive else [])
            sources: dict[int, tuple[str, int | None]] = {out_r: ("stdout", None), err_r: ("stderr", None)}
        proc = sandbox.start(spec)
        if proc.console is not None:
            sources = {proc.console: ("stdout", None)}
    except PybuildError as err:
        os.write(report, f"{getattr(err, 'exit_code', 125)} {err}".encode())
        if cg is not None:
            cg.remove()
        _network_down(container)
        containers.remove(container) if container.config.get("rm") else container.save_state(
            status="exited", exit_code=getattr(err, "exit_code", 125), error=str(err), finished_at=now())
        os._exit(0)
    for fd in pipes:
        os.close(fd)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _started(container, proc)
    _network_started(container)
    os.write(report, b"ok")
    os.close(report)
    from . import stdio

    log = stdio.LogWriter(container.path(stdio.LOG_FILE))
    target = proc.console if proc.console is not None else in_w
    stdio.relay(sources, log, None if feed is None or target is None else (feed, target))
    code = proc.wait()
    proc, code = _supervise(container, proc, code, net, null, log)
    log.close()
    _finish(container, proc, code, cg)
    os._exit(0)


STDIN_FIFO = "stdin.fifo"


def _stdin_feed(container: Container, interactive: bool) -> int | None:
    """The read end of the FIFO an API attach writes the client's stdin to (made by the
    attach before the start; absent for ``pybuild run -d -i``): EOF once the attach closes it."""
    if not interactive:
        return None
    try:
        return os.open(container.path(STDIN_FIFO), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


STOPPED_BY_USER = "stopped-by-user"


def mark_stopped(container: Container) -> None:
    """A stop, kill or ``rm -f`` by the user: its ``--restart`` supervisor must not start it again."""
    try:
        open(container.path(STOPPED_BY_USER), "w").close()
    except FileNotFoundError:
        pass  # removed meanwhile


def restart_wanted(policy: dict[str, Any], code: int, count: int, stopped: bool) -> bool:
    """Docker's rules: ``always``/``unless-stopped`` until a stop or kill; ``on-failure[:N]``
    after a non-zero exit, at most N times (0: no limit); ``no`` never."""
    name, limit = policy.get("name", "no"), policy.get("max", 0)
    if stopped or name == "no":
        return False
    if name == "on-failure":
        return code != 0 and (limit == 0 or count < limit)
    return True


def _supervise(container: Container, proc: sandbox.Process, code: int, net: dict[str, str], null: int,
               log: Any) -> tuple[sandbox.Process, int]:
    """``--restart``: run the container again while its policy says so (the monitor is its
    supervisor; backoff 100 ms doubling to 1 min, as docker's); the last process and code."""
    from . import stdio

    policy = container.config.get("restart") or {}
    count = 0
    while restart_wanted(policy, code, count, os.path.exists(container.path(STOPPED_BY_USER))):
        count += 1
        container.save_state(status="restarting", exit_code=code, restart_count=count)
        time.sleep(min(0.1 * 2 ** (count - 1), 60.0))
        if os.path.exists(container.path(STOPPED_BY_USER)):
            break
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin, stdout, stderr = (None, null, null) if container.config["tty"] else (null, out_w, err_w)
        try:
            proc = sandbox.start(spec_for(container, stdin, stdout, stderr, net))
        except sandbox.SandboxError as err:
            code = err.exit_code
            for fd in (out_r, err_r):
                os.close(fd)
            continue
        finally:
            os.close(out_w)
            os.close(err_w)
        _started(container, proc)
        _network_started(container)  # peers may have come or gone meanwhile
        sources: dict[int, tuple[str, int | None]] = {proc.console: ("stdout", None)} if proc.console is not None else {
            out_r: ("stdout", None), err_r: ("stderr", None)}
        stdio.relay(sources, log)
        for fd in (out_r, err_r):
            os.close(fd)
        code = proc.wait()
    return proc, code


def signal_container(container: Container, sig: int) -> None:
    """Send ``sig`` to the container's pid 1 (a stop or kill: no ``--restart`` after it)."""
    if not container.running and container.state.get("status") != "restarting":
        raise PybuildError(f"container {container.name} is not running")
    mark_stopped(container)
    if alive(container.state.get("pid"), container.state.get("pid_start")):
        os.kill(container.state["pid"], sig)


def wait_exit(container: Container, timeout: float | None = None) -> bool:
    """Wait until the container's exit is recorded; False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        container.reload()
        if containers.refresh(container) is None or container.state.get("status") not in ("running", "restarting"):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def stop(container: Container, timeout: float) -> None:
    """StopSignal, then SIGKILL (the whole cgroup) after ``timeout`` seconds."""
    if container.state.get("status") == "restarting":
        mark_stopped(container)  # the supervisor gives up after its backoff
    if not container.running:
        return
    signal_container(container, container.config.get("stop_signal", signal.SIGTERM))
    if not wait_exit(container, timeout):
        container.cgroup().kill_all()
        wait_exit(container)


def exec_in(container: Container, argv: list[str], env: list[str], user: str | None, cwd: str | None,
            interactive: bool, tty: bool) -> int:
    """Run a command inside a running container (its namespaces and cgroup); its exit code."""
    forwarder = _Forwarder()
    proc = start_exec(container, argv, env, user, cwd, tty, (0 if interactive and not tty else None, 1, 2))
    forwarder.attach(proc)
    master = proc.console
    if master is not None:
        from . import stdio

        stdio.follow_winsize(0, master)
        with stdio.RawTerminal(0):
            stdio.relay({master: ("stdout", 1)}, None, (0, master) if interactive else None)
    return proc.wait()


def start_exec(container: Container, argv: list[str], env: list[str], user: str | None, cwd: str | None,
               tty: bool, fds: tuple[int | None, int, int]) -> sandbox.Process:
    """Start a command inside a running container with the given stdin, stdout and stderr
    (with ``tty`` a pty instead, as ``proc.console``); the caller waits for it."""
    if not container.running or not alive(container.state.get("pid"), container.state.get("pid_start")):
        raise PybuildError(f"container {container.name} is not running")  # (a reused pid must never be entered)
    cfg: dict[str, Any] = container.config
    merged = dict(item.partition("=")[::2] for item in cfg["env"])
    merged.update(item.partition("=")[::2] for item in env)
    spec = SandboxSpec(
        argv=argv, lowerdirs=[], upperdir="", workdir="", state_dir="", env=[f"{k}={v}" for k, v in merged.items()],
        cwd=cwd or cfg["cwd"], user=user if user is not None else cfg["user"], cap_add=cfg["cap_add"],
        cap_drop=cfg["cap_drop"], seccomp=cfg.get("seccomp", True), no_new_privs=cfg.get("no_new_privs", True),
        cgroup_procs=container.cgroup().procs_files(),
        stdin=fds[0], stdout=fds[1], stderr=fds[2], tty=tty, rlimits=cfg.get("rlimits", {}),
        group_add=cfg.get("group_add", []),
    )
    return sandbox.enter(container.state["pid"], spec, container.state.get("pid_start"))


def remove_container(container: Container, force: bool = False, anonymous_volumes: bool = False) -> None:
    """``rm``: a running container only with ``force`` (killed first, no restart); with
    ``anonymous_volumes`` its unnamed volumes go too (``run --rm``, ``rm -v``)."""
    if container.running or container.state.get("status") == "restarting":
        if not force:
            raise PybuildError(f"container {container.name} is running: stop it first or use rm -f")
        mark_stopped(container)
        container.cgroup().kill_all()
        wait_exit(container)
    if containers.refresh(container) is not None:
        containers.remove(container)
    if anonymous_volumes:
        from . import volumes

        for name in container.config.get("anonymous_volumes") or []:
            volumes.remove(container.root, name, force=True)
