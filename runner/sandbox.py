"""Start a sandboxed process: :func:`start`, :func:`run` and :func:`enter` (exec).

Process tree of a container::

    caller ── shim (new mount/uts/ipc/pid[/net] namespaces, waits, exits with the status)
                └── pid 1 (mounts, pivot_root, privileges, exec of the command)

The shim is a ``fork()`` of the caller when the caller has no threads (the fast
path of ``pybuild run``), else a fresh interpreter running :mod:`runner.init` (the
builder runs stages in threads, and fork after threads is unsafe).  Both run the
same code.  The shim and pid 1 report on one pipe: ``P<pid>`` (pid 1's host pid)
and, if setup fails, ``E<exit code> <message>``.  The pipe is close-on-exec, so EOF
means the command was exec'd.  With a tty the pipe is a socket pair instead, and
pid 1 also sends the master of the pty it made in the container's devpts.
Both die with their parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import gc
import os
import signal
import sys

from registry.errors import PybuildError

from . import rootfs, security
from . import syscalls as sc
from .procinfo import proc_start_time
from .process import SetupError, exec_command
from .spec import SandboxSpec


class SandboxError(PybuildError):
    """The container could not start; ``exit_code`` is docker's (125, 126, 127)."""

    def __init__(self, message: str, exit_code: int = 125):
        super().__init__(message)
        self.exit_code = exit_code


def exit_status(status: int) -> int:
    """A wait status as a shell exit code: the code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


class Process:
    """A started sandbox: ``pid`` is the container's pid 1 as the host sees it."""

    def __init__(self, shim_pid: int, pid: int, helper=None):
        self.shim_pid = shim_pid
        self.pid = pid
        self.returncode: int | None = None
        self._helper = helper  # the subprocess.Popen of a runner.init helper, if one
        self.console: int | None = None  # with tty: the pty master, owned by the caller

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the container's pid 1 (ignored once it is gone)."""
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        """Wait for the container to exit; its exit code (128 + signal if killed)."""
        if self.returncode is None:
            if self._helper is not None:
                code = self._helper.wait()
                self.returncode = 128 - code if code < 0 else code
            else:
                _, status = os.waitpid(self.shim_pid, 0)
                self.returncode = exit_status(status)
        return self.returncode


def _report(fd: int, line: str) -> None:
    os.write(fd, (line.replace("\n", " ") + "\n").encode())


def _fail(fd: int, err: BaseException) -> None:
    """Report a setup failure from inside the sandbox and exit; never returns."""
    code = getattr(err, "exit_code", 125)
    if isinstance(err, OSError) and err.filename is not None:
        message = f"{err.strerror}: {err.filename}"
    else:
        message = str(err) or type(err).__name__
    try:
        _report(fd, f"E{code} {message}")
    finally:
        os._exit(code)


def _die_with_parent() -> None:
    parent = os.getppid()
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(137)


def _join_cgroups(paths: list[str]) -> None:
    for path in paths:
        with open(path, "w") as fh:
            fh.write("0")


def _container_main(spec: SandboxSpec, report: int) -> None:
    """pid 1 of a new container: mounts, pivot_root, hardening, then exec (or init)."""
    try:
        _die_with_parent()
        os.setsid()
        _join_cgroups(spec.cgroup_procs)
        _preload(spec)
        if spec.network != "host":
            _loopback_up()
        rootfs.prepare(spec, os.path.join(spec.state_dir, "rootfs"))
        if not spec.privileged:
            rootfs.harden_proc()
        sc.sethostname(spec.hostname)
        if spec.tty:
            _attach_console(report)
        if spec.init:
            _init(spec, report)
        exec_command(spec)
    except BaseException as err:  # noqa: BLE001 - everything becomes one report line
        _fail(report, err)


def _preload(spec: SandboxSpec) -> None:
    """Import now what runs after pivot_root, when the host's Python library is out of sight."""
    if spec.seccomp:
        security.load_seccomp_module()
    if spec.tty:
        import fcntl  # noqa: F401
        import socket  # noqa: F401
        import termios  # noqa: F401


def _loopback_up() -> None:
    """Bring up ``lo`` in a new network namespace, as docker does for ``--network none``."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock, siocgifflags, struct.pack("16sH14x", b"lo", 0)))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


_TIOCSPTLCK = 0x40045431
_TIOCGPTPEER = 0x5441


def _attach_console(report: int) -> None:
    """Make a pty in the container's own devpts its stdio and controlling terminal;
    the master goes to the caller over the report socket (runc's console socket)."""
    import fcntl
    import socket
    import termios

    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, b"\0\0\0\0")
    slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)
    sock = socket.socket(fileno=report)
    try:
        socket.send_fds(sock, [b"T\n"], [master])
    finally:
        sock.detach()
    os.close(master)


def _init(spec: SandboxSpec, report: int) -> None:
    """``--init``: run the command as a child, forward signals, reap zombies; exits."""
    child = os.fork()
    if child == 0:
        try:
            exec_command(spec)
        except BaseException as err:  # noqa: BLE001
            _fail(report, err)
    os.close(report)

    def forward(sig: int, _frame) -> None:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            try:
                signal.signal(sig, forward)
            except (OSError, ValueError):
                pass
    while True:
        pid, status = os.wait()
        if pid == child:
            os._exit(exit_status(status))


def namespace_flags(spec: SandboxSpec) -> int:
    """The namespaces a new container gets."""
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID
    if spec.network != "host" and not spec.netns:
        flags |= sc.CLONE_NEWNET
    return flags


def shim(spec: SandboxSpec, report: int, target: tuple[int, str | None] | None = None) -> None:
    """The shim's whole life: namespaces, fork pid 1 (or exec's process), wait; exits.

    ``target``: for exec, the running container's pid 1 and its start time.
    """
    gc.disable()  # a collection would touch (and copy-on-write) every object inherited from the caller
    try:
        _die_with_parent()
        os.setsid()  # out of the terminal's process group: signals come from the caller
        _set_rlimits(spec.rlimits)
        if target is None:
            if spec.netns:
                _join_netns(spec.netns)
            sc.unshare(namespace_flags(spec))
        else:
            _preload(spec)
            _join_namespaces(target[0], target[1], spec.cgroup_procs)
    except BaseException as err:  # noqa: BLE001
        _fail(report, err)
    pid = os.fork()
    if pid == 0:
        if target is None:
            _container_main(spec, report)
        _enter_main(spec, report)
    _report(report, f"P{pid}")
    os.close(report)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    _, status = os.waitpid(pid, 0)
    os._exit(exit_status(status))


def _set_rlimits(limits: dict[str, list[int]]) -> None:
    """``--ulimit``: inherited by the container's processes (checked against the host's hard limits)."""
    if limits:
        import resource

        for name, (soft, hard) in limits.items():
            resource.setrlimit(getattr(resource, name), (soft, hard))


def _join_netns(path: str) -> None:
    """Enter the network namespace the network layer made (a bind-mounted file)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, sc.CLONE_NEWNET)
    finally:
        os.close(fd)


_ENTER_ORDER = ("ipc", "uts", "net", "pid", "mnt")


def _join_namespaces(pid: int, start: str | None, cgroup_procs: list[str]) -> None:
    fds = [os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in _ENTER_ORDER]
    if start is not None and proc_start_time(pid) != start:  # checked after opening: a reused pid fails here
        raise SetupError("the container is no longer running", 1)
    _join_cgroups(cgroup_procs)
    for fd in fds:
        sc.setns(fd)
        os.close(fd)


def _enter_main(spec: SandboxSpec, report: int) -> None:
    try:
        _die_with_parent()
        os.setsid()
        if spec.tty:
            _attach_console(report)
        exec_command(spec)
    except BaseException as err:  # noqa: BLE001
        _fail(report, err)


def _dup_stdio(spec: SandboxSpec, report: int) -> int:
    """Put the spec's fds on 0, 1, 2 and close every other fd but ``report`` (returned, moved to 3)."""
    fds = [spec.stdin, spec.stdout, spec.stderr]
    null = None
    if spec.stdin is None:
        null = os.open("/dev/null", os.O_RDONLY)
        fds[0] = null
    high = [os.dup(fd) for fd in fds]  # so dup2 order cannot clobber a source
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)
    if null is not None:
        os.close(null)
    os.dup2(report, 3, inheritable=False)
    sc.close_range(4)
    return 3


def _needs_helper() -> bool:
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


def _spawn(spec: SandboxSpec, report: int, target: tuple[int, str | None] | None):
    """Start the shim: ``(pid, popen or None)``."""
    if not _needs_helper():
        pid = os.fork()
        if pid == 0:
            try:
                report = _dup_stdio(spec, report)
            except BaseException as err:  # noqa: BLE001
                _fail(report, err)
            shim(spec, report, target)
        return pid, None
    return _spawn_helper(spec, report, target)


def _spawn_helper(spec: SandboxSpec, report: int, target: tuple[int, str | None] | None):
    import json
    import subprocess

    payload = json.dumps({"spec": spec.to_json(), "target": target}).encode()
    spec_r, spec_w = os.pipe()
    # -S: the helper needs only the standard library and this tree, not site's
    # start-up work (an editable install's finder alone costs ~40 ms per RUN step)
    tree = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    launcher = "import sys; sys.path.insert(0, sys.argv.pop(1)); from runner.init import main; main(sys.argv[1:])"
    cmd = [sys.executable, "-S", "-c", launcher, tree, str(spec_r), str(report)]
    stdin = spec.stdin if spec.stdin is not None else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=spec.stdout, stderr=spec.stderr, pass_fds=(spec_r, report))
    os.close(spec_r)
    with os.fdopen(spec_w, "wb") as fh:
        fh.write(payload)
    return proc.pid, proc


def _read_reports(spec: SandboxSpec, target: tuple[int, str | None] | None):
    """Spawn the shim; return its pid, helper, the report bytes and the console fd (if tty)."""
    if not spec.tty:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        shim_pid, helper = _spawn(spec, write_end, target)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as fh:
            return shim_pid, helper, fh.read(), None
    import socket

    ours, theirs = socket.socketpair()
    shim_pid, helper = _spawn(spec, theirs.fileno(), target)
    theirs.close()
    chunks, console = [], None
    with ours:
        while True:
            data, fds, _flags, _addr = socket.recv_fds(ours, 4096, 1)
            if fds:
                console = fds[0]
            if not data:
                break
            chunks.append(data)
    return shim_pid, helper, b"".join(chunks), console


def _start(spec: SandboxSpec, target: tuple[int, str | None] | None) -> Process:
    shim_pid, helper, reports, console = _read_reports(spec, target)
    pid = 0
    error = None
    for line in reports.decode(errors="replace").splitlines():
        if line.startswith("P"):
            pid = int(line[1:])
        elif line.startswith("E") and error is None:
            code, _, message = line[1:].partition(" ")
            error = SandboxError(message, int(code))
    proc = Process(shim_pid, pid, helper)
    proc.console = console
    if error is not None or not pid:
        if console is not None:
            os.close(console)
        proc.wait()
        raise error or SandboxError(f"sandbox setup died with status {proc.returncode}")
    return proc


def start(spec: SandboxSpec) -> Process:
    """Start a new container from ``spec``; returns once its command was exec'd.

    Raises :class:`SandboxError` with one clear line if setup or exec failed.
    """
    rootfs.write_state_files(spec)
    return _start(spec, None)


def run(spec: SandboxSpec) -> int:
    """Start a container and wait: its exit code (128 + signal if killed)."""
    return start(spec).wait()


def enter(pid: int, spec: SandboxSpec, start: str | None = None) -> Process:
    """Start ``spec.argv`` inside the running container whose pid 1 is ``pid`` (exec).

    Uses ``argv``, ``env``, ``cwd``, ``user``, capabilities, ``no_new_privs``, seccomp,
    stdio, ``tty`` and ``cgroup_procs`` of the spec; the rootfs fields are ignored.
    ``start`` (pid 1's start time) makes it refuse a pid that was reused meanwhile.
    """
    return _start(spec, (pid, start))
