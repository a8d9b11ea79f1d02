"""What a sandbox is made of: :class:`SandboxSpec` and its :class:`Mount` entries.

Shared by ``pybuild run`` (via :mod:`runner.containers`) and the builder's RUN steps.
A spec is plain data: it crosses to the ``python -m runner.init`` helper as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Mount:
    """One extra mount in the container.

    ``type``: ``bind`` (``source`` a host path, file or directory), ``tmpfs``
    (``options`` e.g. ``size=64m,mode=1777``).  Secrets are read-only file binds;
    cache mounts are rw directory binds.
    """

    target: str
    type: str = "bind"
    source: str | None = None
    readonly: bool = False
    options: str = ""


@dataclass
class SandboxSpec:
    """Everything needed to start one sandboxed process.

    ``lowerdirs`` are the image's snapshot dirs, bottom layer first; ``upperdir``
    and ``workdir`` (same filesystem, both existing) receive the changes, so for a
    RUN step ``upperdir`` is the step's diff.  ``state_dir`` is a private directory
    for the generated ``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf`` and the
    init layer (mount points); none of them reach ``upperdir``.
    ``env`` is the full environment (``K=V``), used as is apart from ``HOME``, which
    is added from ``/etc/passwd`` when missing.  ``user`` is docker's ``-u`` syntax.
    ``cgroup_procs`` are the ``cgroup.procs`` files the process joins before it starts;
    ``cgroup_dirs`` maps a controller name to the cgroup dir shown read-only at
    ``/sys/fs/cgroup/<name>`` inside.
    ``stdin``/``stdout``/``stderr`` are fds in the caller; with ``tty`` they are the
    slave side of a pty, which becomes the controlling terminal.
    """

    argv: list[str]
    lowerdirs: list[str]
    upperdir: str
    workdir: str
    state_dir: str
    env: list[str] = field(default_factory=lambda: [f"PATH={DEFAULT_PATH}"])
    cwd: str = "/"
    user: str = ""
    hostname: str = "pybuild"
    network: str = "host"  # "host" or "none"
    mounts: list[Mount] = field(default_factory=list)
    readonly_rootfs: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    no_new_privs: bool = True
    seccomp: bool = True
    init: bool = False
    cgroup_procs: list[str] = field(default_factory=list)
    cgroup_dirs: dict[str, str] = field(default_factory=dict)
    stdin: int | None = 0
    stdout: int = 1
    stderr: int = 2
    tty: bool = False

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON-able data (for the helper process)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SandboxSpec":
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        data["mounts"] = [Mount(**m) for m in data.get("mounts", [])]
        return cls(**data)
