"""What a sandbox is made of: :class:`SandboxSpec` and its :class:`Mount` entries.

Shared by ``pybuild run`` (via :mod:`runner.lifecycle`) and the builder's RUN steps.
A spec is plain data: it crosses to the shim (:mod:`runner.init`) marshalled.
Plain classes rather than dataclasses: ``dataclasses`` (with ``inspect`` and ``ast``)
would cost ``pybuild run`` several milliseconds of imports.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported on the run path
if TYPE_CHECKING:
    from typing import Any


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRED = object()


class Record:
    """Keyword-only construction from ``_FIELDS`` (name -> default or factory), equality, repr."""

    _FIELDS: dict[str, Any] = {}

    if TYPE_CHECKING:  # fields are set from _FIELDS: tell the type checker any name is an attribute
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, **values: Any):
        unknown = set(values) - set(self._FIELDS)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown field(s) {', '.join(sorted(unknown))}")
        for name, default in self._FIELDS.items():
            if name in values:
                value = values[name]
            elif default is REQUIRED:
                raise TypeError(f"{type(self).__name__}: missing field {name}")
            else:
                value = default() if callable(default) else default
            setattr(self, name, value)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-able data."""
        return {name: getattr(self, name) for name in self._FIELDS}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_json() == other.to_json()  # type: ignore[union-attr]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_json().items())})"


class Mount(Record):
    """One extra mount in the container.

    ``target``: path inside the container.  ``type``: ``bind`` (``source`` a host
    file or directory) or ``tmpfs`` (``options`` e.g. ``size=64m,mode=1777``).
    ``readonly``.  Secrets are read-only file binds; cache mounts are rw dir binds.
    """

    _FIELDS = {"target": REQUIRED, "type": "bind", "source": None, "readonly": False, "options": ""}


class SandboxSpec(Record):
    """Everything needed to start one sandboxed process (keyword arguments).

    - ``argv`` (list[str]): the command; looked up in the container's ``PATH``.
    - ``lowerdirs`` (list[str]): the image's snapshot dirs, bottom layer first.
    - ``upperdir``, ``workdir`` (str): existing dirs on one filesystem; ``upperdir``
      receives the changes, so for a RUN step it is the step's diff.
    - ``state_dir`` (str): a private dir for the generated ``/etc/hosts``,
      ``/etc/hostname``, ``/etc/resolv.conf``, the init layer (mount points) and the
      rootfs mount point; nothing of it reaches ``upperdir``.
    - ``env`` (list[str] ``K=V``): used as is, plus ``HOME`` from /etc/passwd if missing.
    - ``cwd`` (str, created if missing), ``user`` (docker's ``-u``: name, uid,
      ``user:group``), ``hostname``, ``network`` (``"host"``, ``"none"``, or a network
      name with ``netns``: the path of a namespace to join, made by :mod:`runner.network`).
    - ``hosts``, ``resolv_conf`` (str or None): the text of those files when the
      network layer made it (None: generated from ``network``).
    - ``privileged``: docker's ``--privileged``: /sys writable, no masked or read-only /proc
      paths (capabilities, seccomp and devices are set by the caller through their fields).
    - ``devices`` (list of ``[host path, container path]``): ``--device`` nodes under /dev.
    - ``group_add`` (list[str]): supplementary groups by name or number (``--group-add``).
    - ``rlimits`` (dict): ``RLIMIT_*`` name -> ``[soft, hard]`` (``--ulimit``), set by the shim.
    - ``mounts`` (list[Mount]), ``readonly_rootfs``, ``cap_add``/``cap_drop``
      (names, ``ALL``), ``no_new_privs``, ``seccomp``, ``init`` (run under a
      minimal init that reaps zombies and forwards signals).
    - ``cgroup_procs`` (list[str]): ``cgroup.procs`` files joined before start;
      ``cgroup_dirs`` (dict): controller -> cgroup dir, shown read-only inside at
      ``/sys/fs/cgroup/<controller>`` (key ``""``: v2, at ``/sys/fs/cgroup``).
    - ``stdin`` (fd or None for /dev/null), ``stdout``, ``stderr`` (fds of the
      caller).  With ``tty`` they are ignored: a pty is made in the container's own
      devpts (its stdio and controlling terminal) and the caller gets the master
      as ``Process.console``.
    """

    _FIELDS = {
        "argv": REQUIRED, "lowerdirs": REQUIRED, "upperdir": REQUIRED, "workdir": REQUIRED,
        "state_dir": REQUIRED, "env": lambda: [f"PATH={DEFAULT_PATH}"], "cwd": "/", "user": "",
        "hostname": "pybuild", "network": "host", "mounts": list, "readonly_rootfs": False,
        "cap_add": list, "cap_drop": list, "no_new_privs": True, "seccomp": True, "init": False,
        "cgroup_procs": list, "cgroup_dirs": dict, "stdin": 0, "stdout": 1, "stderr": 2, "tty": False,
        "netns": "", "hosts": None, "resolv_conf": None, "rlimits": dict, "group_add": list, "devices": list, "privileged": False,
    }

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["mounts"] = [m.to_json() for m in self.mounts]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SandboxSpec":
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        data["mounts"] = [Mount(**m) for m in data.get("mounts", [])]
        return cls(**data)
