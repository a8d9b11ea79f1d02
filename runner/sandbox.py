"""Start a sandboxed process: :func:`start`, :func:`run` and :func:`enter` (exec).

Process tree of a container::

    caller ── shim (new mount/uts/ipc/pid[/net] namespaces, waits, exits with the status)
                └── pid 1 (mounts, pivot_root, privileges, exec of the command)

The shim is a fresh interpreter running :mod:`runner.init`, spawned from a sealed,
read-only view of the interpreter's binary (:mod:`runner.exeseal`), never a fork of
the caller: its child, pid 1, is the process that execs into the container, and the
host's binary must not be reachable through its ``/proc/self/exe``.  The shim and pid 1 report on one pipe: ``P<pid>`` (pid 1's host pid)
and, if setup fails, ``E<exit code> <message>``.  The pipe is close-on-exec, so EOF
means the command was exec'd.  With a tty the pipe is a socket pair instead, and
pid 1 also sends the master of the pty it made in the container's devpts.
Both die with their parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import _signal as signal  # the C module: `signal` would import enum (~3 ms per shim)
import gc
import os
import sys

from registry.errors import PybuildError

from . import exeseal, rootfs, security
from . import syscalls as sc
from .process import SetupError, exec_command
from .procinfo import proc_start_time
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

    def __init__(self, shim_pid: int, pid: int):
        self.shim_pid = shim_pid
        self.pid = pid
        self.returncode: int | None = None
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
        init = exeseal.sealed(INIT_BINARY) if spec.init else None  # opened while the host is in sight
        rootfs.prepare(spec, os.path.join(spec.state_dir, "rootfs"))
        if not spec.privileged:
            rootfs.harden_proc()
        sc.sethostname(spec.hostname)
        if spec.tty:
            _attach_console(report)
        exec_command(spec, init)
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


def namespace_flags(spec: SandboxSpec) -> int:
    """The namespaces a new container gets."""
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID
    if spec.network != "host" and not spec.netns:
        flags |= sc.CLONE_NEWNET
    return flags


_PR_SET_DUMPABLE = 4
# ``--init``: tini, statically linked (Debian's ``tini`` package), run as pid 1 from a
# read-only clone of its mount and shown as docker shows its copy of tini.
INIT_BINARY = "/usr/bin/tini-static"


def shim(spec: SandboxSpec, report: int, target: tuple[int, str | None] | None = None) -> None:
    """The shim's whole life: namespaces, fork pid 1 (or exec's process), wait; exits.

    ``target``: for exec, the running container's pid 1 and its start time.
    """
    gc.disable()  # a collection would touch (and copy-on-write) every object inherited from the caller
    try:
        _die_with_parent()
        # Until it execs, pid 1 (or exec's process) is ours: no container process may
        # open its /proc entries (exe, map_files, mem); execve makes it dumpable again.
        sc.prctl(_PR_SET_DUMPABLE, 0)
        os.setsid()  # out of the terminal's process group: signals come from the caller
        _set_rlimits(spec.rlimits)
        if target is None:
            if spec.netns:
                _join_netns(spec.netns)
            _unshare(namespace_flags(spec))
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


NO_NAMESPACES = ("cannot create the container's namespaces (unshare: operation not permitted): root needs "
                 "CAP_SYS_ADMIN, a normal user needs user namespaces; inside docker run, give the container "
                 "--cap-add SYS_ADMIN --security-opt seccomp=unconfined (or --privileged)")


def _unshare(flags: int) -> None:
    """unshare, with what to do when the caller may not make namespaces (e.g. inside a container)."""
    try:
        sc.unshare(flags)
    except PermissionError:
        raise SetupError(NO_NAMESPACES, 125) from None


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
    for ns, fd in zip(_ENTER_ORDER, fds):
        if not _same_namespace(fd, ns):  # (rootless, --network host: the host's may not be re-entered)
            sc.setns(fd)
        os.close(fd)


def _same_namespace(fd: int, ns: str) -> bool:
    """Whether ``fd`` is the namespace this process is already in."""
    mine, theirs = os.stat(f"/proc/self/ns/{ns}"), os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _enter_main(spec: SandboxSpec, report: int) -> None:
    try:
        _die_with_parent()
        os.setsid()
        if spec.tty:
            _attach_console(report)
        exec_command(spec)
    except BaseException as err:  # noqa: BLE001
        _fail(report, err)


_LAUNCHER = "import sys; sys.path.insert(0, sys.argv.pop(1)); from runner.init import main; main()"


def _spawn(spec: SandboxSpec, report: int, target: tuple[int, str | None] | None) -> int:
    """Start the shim as a fresh interpreter run from a sealed view of its binary; its pid.

    Never a fork of the caller: the shim's child is the process that execs into the
    container, and while it still runs Python, ``/proc/self/exe`` must not be the
    host's interpreter (CVE-2019-5736, see :mod:`runner.exeseal`).  ``posix_spawn``
    is safe in a threaded caller (concurrent build stages) and cheaper than
    ``subprocess``; the shim gets the spec on fd 3 (marshal) and the report on fd 4.
    """
    import fcntl
    import marshal

    payload = marshal.dumps({"spec": spec.to_json(), "target": target})
    spec_r, spec_w = os.pipe()
    opened: list[int] = [spec_r]
    try:
        sources = [spec.stdin, spec.stdout, spec.stderr, spec_r, report]
        if spec.stdin is None:
            sources[0] = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            opened.append(sources[0])
        # every source first goes above the targets 0-4, so no dup2 clobbers another's source
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in sources]
        opened += high
        exe = exeseal.sealed(exeseal.interpreter())
        opened.append(exe)
        exe_high = fcntl.fcntl(exe, fcntl.F_DUPFD_CLOEXEC, 10)
        opened.append(exe_high)
        # -S: the shim needs only the standard library and this tree, not site's start-up work
        tree = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        argv = [sys.executable, "-S", "-c", _LAUNCHER, tree]
        actions = [(os.POSIX_SPAWN_DUP2, fd, slot) for slot, fd in enumerate(high)]
        pid = os.posix_spawn(f"/proc/self/fd/{exe_high}", argv, os.environ, file_actions=actions,
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    except OSError as err:
        os.close(spec_w)
        raise SandboxError(f"cannot start the sandbox's shim ({sys.executable}): {err.strerror or err}") from None
    finally:
        for fd in opened:
            os.close(fd)
    try:
        with os.fdopen(spec_w, "wb") as fh:
            fh.write(payload)
    except BrokenPipeError:
        pass  # the shim died before reading: its exit status tells why
    return pid


def _read_reports(spec: SandboxSpec, target: tuple[int, str | None] | None):
    """Spawn the shim; return its pid, the report bytes and the console fd (if tty)."""
    if not spec.tty:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            shim_pid = _spawn(spec, write_end, target)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        with os.fdopen(read_end, "rb") as fh:
            return shim_pid, fh.read(), None
    import socket

    ours, theirs = socket.socketpair()
    shim_pid = _spawn(spec, theirs.fileno(), target)
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
    return shim_pid, b"".join(chunks), console


def _start(spec: SandboxSpec, target: tuple[int, str | None] | None) -> Process:
    if spec.seccomp and security.seccomp_binding() is None:  # (the container's process checks again)
        raise SandboxError(security.SECCOMP_MISSING)
    if spec.init and target is None and not os.path.exists(INIT_BINARY):
        raise SandboxError(f"--init needs {INIT_BINARY}: install the Debian package tini")
    shim_pid, reports, console = _read_reports(spec, target)
    pid = 0
    error = None
    for line in reports.decode(errors="replace").splitlines():
        if line.startswith("P"):
            pid = int(line[1:])
        elif line.startswith("E") and error is None:
            code, _, message = line[1:].partition(" ")
            error = SandboxError(message, int(code))
    proc = Process(shim_pid, pid)
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
