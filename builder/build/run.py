"""A RUN step: the sandbox spec (env, user, cwd, network, mounts), its output, its diff.

The process runs in the runner's sandbox over an overlay of the stage's snapshots
with a fresh upper dir, which is the step's diff.  Mount points the sandbox had to
create for ``--mount`` targets are removed from the upper dir afterwards (secrets
and caches never reach a layer), and so are writes under declared VOLUMEs, as
docker's legacy builder drops them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import stat
import threading
from typing import TYPE_CHECKING, Any

from base import safepath
from base.removal import remove_tree
from builder.dockerfile import instructions as ins

if TYPE_CHECKING:
    from builder.dockerfile.stages import Stage

    from .executor import Executor, StageState
    from .progress import Step


class RunStep:
    """One RUN instruction, expanded, in a given stage state."""

    def __init__(self, executor: "Executor", stage: "Stage", state: "StageState", inst: ins.Run):
        self.executor = executor
        self.stage = stage
        self.inst = inst
        rc = state.run_config
        self.argv, self.files = inst.script(state.shell)
        self.env = state.scope.run_env()
        ssh = [m for m in inst.mounts if m.type == "ssh"]
        if ssh and not any(e.startswith("SSH_AUTH_SOCK=") for e in self.env):
            self.env = self.env + [f"SSH_AUTH_SOCK={ssh[0].target}"]  # as BuildKit, for the first agent
        self.history_args = state.scope.history_args()
        # docker prefixes ``|N args`` whenever build args reach the process, even if none is shown
        self.has_build_args = len(self.env) > len(state.scope.env)
        self.user = rc.get("User") or ""
        self.cwd = rc.get("WorkingDir") or "/"
        self.volumes = sorted(rc.get("Volumes") or {})
        network = inst.network if inst.network not in (None, "default") else executor.opts.network
        self.network = network
        self.platform = state.platform

    def description(self) -> list[Any]:
        mounts = [[m.type, m.target, m.source, m.from_ and self.executor.source_key(m.from_, self.inst, self.stage),
                   m.id, m.readonly, self._context_checksums(m)] for m in self.inst.mounts]
        return ["RUN", self.argv, self.env, self.user, self.cwd, self.network, mounts,
                sorted((k, v[0].decode(errors="replace")) for k, v in self.files.items()), self.volumes]

    def _context_checksums(self, m) -> list | None:
        """A bind mount of the build context is keyed by what it shows, as a COPY of it is."""
        if m.type != "bind" or m.from_:
            return None
        ctx = self.executor.opts.context
        return [[rel, ctx.checksum(rel)] for rel in ctx.resolve(m.source or ".")]

    def created_by(self) -> str:
        if self.history_args or self.has_build_args:
            return " ".join([f"|{len(self.history_args)}", *self.history_args, *self.argv])
        return " ".join(self.argv)

    # -- execution ----------------------------------------------------------------------
    def execute(self, lowers: list[str], scratch, step: "Step") -> str:
        """Run the command; return the upper dir holding its changes."""
        from runner import emulation  # noqa: PLC0415

        emulation.require(self.platform)  # one line saying what to install, not "exec format error"
        upper, work, state_dir = (os.path.join(scratch, n) for n in ("upper", "work", "state"))
        for d in (upper, work, state_dir):
            os.makedirs(d)
        os.chmod(upper, 0o755)
        self._locks: list[int] = []
        with contextlib.ExitStack() as self._cleanup:
            try:
                mounts = self._mounts(scratch)
                return self._run(mounts, lowers, upper, work, state_dir, step)
            finally:
                for fd in self._locks:
                    os.close(fd)  # releases sharing=locked cache mounts

    def _run(self, mounts: list, lowers: list[str], upper: str, work: str, state_dir: str, step: "Step") -> str:
        from runner import sandbox  # noqa: PLC0415
        from runner.spec import SandboxSpec  # noqa: PLC0415

        read_fd, write_fd = os.pipe()
        spec = SandboxSpec(argv=self.argv, lowerdirs=lowers, upperdir=upper, workdir=work,
                           state_dir=state_dir, env=self.env, cwd=self.cwd, user=self.user,
                           network=self.network, mounts=mounts, stdin=None, stdout=write_fd,
                           stderr=write_fd, hostname="buildkitsandbox",
                           # as docker build: no no_new_privs, so setuid helpers (su, sudo) work in RUN
                           no_new_privs=False)
        try:
            proc = sandbox.start(spec)
        except BaseException:
            os.close(write_fd)
            os.close(read_fd)
            raise
        os.close(write_fd)
        reader = threading.Thread(target=_pump, args=(read_fd, step), daemon=True)
        reader.start()
        self.executor.running.add(proc)
        try:
            code = proc.wait()
        except BaseException:
            proc.signal(signal.SIGKILL)
            proc.wait()
            raise
        finally:
            self.executor.running.discard(proc)
            reader.join()
        if self.executor.cancelled.is_set():
            from .executor import BuildError  # noqa: PLC0415
            raise BuildError("build cancelled: another stage failed")
        if code != 0:
            step.error(f"process {' '.join(self.argv)!r} did not complete successfully: exit code {code}")
            from .executor import BuildError  # noqa: PLC0415
            raise BuildError(f"{self.inst.path}:{self.inst.line}: RUN failed: the command "
                             f"{' '.join(self.argv)!r} returned a non-zero code: {code}")
        self._clean_upper(upper, lowers, [m.target for m in mounts])
        return upper

    def _mounts(self, scratch) -> list:
        from runner.spec import Mount  # noqa: PLC0415


        opts = self.executor.opts
        out = []
        for m in self.inst.mounts:
            if m.type == "secret":
                sid = m.id or os.path.basename(m.target)
                src = opts.secrets.get(sid)
                if src is None:
                    if m.required:
                        raise self.inst.error(f"secret {sid} not provided (use --secret id={sid},src=FILE)")
                    continue
                out.append(Mount(target=m.target or f"/run/secrets/{sid}", type="bind", source=src, readonly=True))
            elif m.type == "cache":
                path = self.executor.cache.mount_dir(m.id or m.target)
                try:
                    path.mkdir(parents=True)
                except FileExistsError:
                    pass  # made by an earlier build, or by a concurrent stage just now
                else:
                    os.chown(path, m.uid or 0, m.gid or 0)
                    os.chmod(path, 0o755 if m.mode is None else m.mode)
                    if self.executor.imported is not None:  # --cache-from with cache-mounts: seed it
                        self.executor.imported.seed_mount(m.id or m.target, str(path))
                self.executor.cache_mounts[m.id or m.target] = str(path)
                if m.sharing == "locked":  # one RUN at a time, across stages and builds
                    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    self._locks.append(fd)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                out.append(Mount(target=m.target, type="bind", source=str(path), readonly=False))
            elif m.type == "bind":
                if m.from_:
                    root, _ = self.executor.source_root(m.from_, self.inst, self.stage)
                else:
                    root = opts.context.root
                source = safepath.resolve(root, m.source or "/")
                if not m.readonly and os.path.isdir(source):
                    # rw as in BuildKit: writable during the RUN, the writes thrown away after
                    from .mounting import writable  # noqa: PLC0415
                    source, _ = self._cleanup.enter_context(
                        writable([source], os.path.join(scratch, f"bind-{len(out)}")))
                out.append(Mount(target=m.target, type="bind", source=source, readonly=m.readonly))
            elif m.type == "ssh":  # the agent's socket, bound for this RUN only; never in a layer
                sock = opts.ssh.get(m.id)
                if sock is None:
                    if m.required:
                        raise self.inst.error(f"no SSH agent {m.id!r} was forwarded (use --ssh {m.id}"
                                              f"{'' if m.id == 'default' else '=SOCKET'})")
                    continue
                out.append(Mount(target=m.target, type="bind", source=sock, readonly=False))
            elif m.type == "tmpfs":
                out.append(Mount(target=m.target, type="tmpfs", options=f"size={m.size}" if m.size else ""))
        for target, (data, mode) in self.files.items():
            host = os.path.join(scratch, "files", os.path.basename(target))
            os.makedirs(os.path.dirname(host), exist_ok=True)
            with open(host, "wb") as fh:
                fh.write(data)
            os.chmod(host, mode)
            out.append(Mount(target=target, type="bind", source=host, readonly=True))
        return out

    def _clean_upper(self, upper: str, lowers: list[str], targets: list[str]) -> None:
        """Drop what the step wrote under declared volumes and its leftover mount points.
        The upper dir's symlinks are the image's: none is followed (a step may have made
        a volume's parent a link to a host path)."""
        for vol in self.volumes:
            try:
                fd = safepath.open_dir(upper, vol, follow=False)
            except OSError:
                continue  # a symlink or a file where the volume was: nothing under it to drop
            if fd is None:
                continue
            try:
                for entry in os.scandir(fd):
                    if entry.is_dir(follow_symlinks=False):
                        remove_tree(entry.name, dir_fd=fd)
                    else:
                        os.unlink(entry.name, dir_fd=fd)
            finally:
                os.close(fd)
        for target in targets + self.volumes:
            rel = os.path.normpath(target).lstrip("/")
            while rel:
                if not _drop_if_mountpoint(upper, lowers, rel):
                    break
                rel = os.path.dirname(rel)


def _in_lowers(lowers: list[str], rel: str) -> os.stat_result | None:
    """``lstat`` of ``rel`` in the topmost lower that has it (no symlink followed)."""
    for lower in reversed(lowers):
        try:
            fd = safepath.open_dir(lower, os.path.dirname(rel), follow=False)
        except OSError:
            continue
        if fd is None:
            continue
        try:
            st = safepath.lstat_at(os.fsencode(os.path.basename(rel)), fd)
        finally:
            os.close(fd)
        if st is not None:
            return st
    return None


def _drop_if_mountpoint(upper: str, lowers: list[str], rel: str) -> bool:
    """Remove ``rel`` from the upper dir if it is an empty leftover mount point (never
    following a symlink in the upper dir)."""
    try:
        parent = safepath.open_dir(upper, os.path.dirname(rel), follow=False)
    except OSError:
        return False  # a symlink or a file on the way: not a mount point we made
    if parent is None:
        return True
    name = os.path.basename(rel)
    try:
        st = safepath.lstat_at(os.fsencode(name), parent)
        if st is None:
            return True
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                if any(os.scandir(fd)) or any(name.endswith(".overlay.opaque") for name in os.listxattr(fd)):
                    return False
            finally:
                os.close(fd)
        elif not (stat.S_ISREG(st.st_mode) and st.st_size == 0):
            return False
        lower = _in_lowers(lowers, rel)
        if lower is not None and (stat.S_IFMT(lower.st_mode) != stat.S_IFMT(st.st_mode)
                                  or stat.S_IMODE(lower.st_mode) != stat.S_IMODE(st.st_mode)
                                  or (lower.st_uid, lower.st_gid) != (st.st_uid, st.st_gid)):
            return False
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)
    finally:
        os.close(parent)
    return True


def _pump(fd: int, step: "Step") -> None:
    with os.fdopen(fd, "rb") as fh:
        for line in fh:
            step.output(line.decode(errors="replace").rstrip("\n"))
