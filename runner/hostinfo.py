"""What this host gives pybuild: the facts ``pybuild info`` prints, gathered without side effects.

Kept apart from the command so it stays one read-only pass: which mode a command would
run in (root, or rootless through a user namespace), the store, the storage driver, the
network backend, the cgroup version, and what is missing for full function.
"""

from __future__ import annotations

import os
import shutil

from . import cgroups, userns
from .network.rootless_backend import TOOLS as NETWORK_TOOLS


def facts(root: str) -> list[tuple[str, str]]:
    """``(label, value)`` pairs in the order ``pybuild info`` prints them."""
    rootless = os.geteuid() != 0
    missing = _missing(rootless)
    cgroup = cgroups.host_version()
    if rootless:
        mode = "rootless (user namespace: the user is root inside, /etc/subuid and /etc/subgid ranges the rest)"
        driver = "overlay (in the user namespace, userxattr)"
        network = _rootless_network()
        limits = f"{cgroup}, none delegated to the user: --memory, --cpus and --pids-limit are refused"
    else:
        mode = "root"
        driver = "overlay"
        network = "cni (bridge, user-defined networks), host, none"
        limits = f"{cgroup} (limits applied)"
    return [("Mode", mode), ("Store", root), ("Storage driver", driver), ("Network", network),
            ("Cgroup", limits), ("Missing", "; ".join(missing) if missing else "nothing")]


def _rootless_network() -> str:
    for name in NETWORK_TOOLS:
        found = shutil.which(name)
        if found:
            return f"{name} ({found}) for the default network; host, none"
    return "host, none only (no pasta or slirp4netns)"


def _missing(rootless: bool) -> list[str]:
    out = []
    if rootless and not any(shutil.which(name) for name in NETWORK_TOOLS):
        out.append("container networks need pasta (Debian passt) or slirp4netns")
    if rootless:
        try:
            userns.plan()
        except userns.RootlessError as err:
            out.append(str(err))
        if not os.path.exists("/proc/self/ns/user"):
            out.append("user namespaces (kernel built without CONFIG_USER_NS)")
    from .sandbox import INIT_BINARY

    if not os.path.exists(INIT_BINARY):
        out.append(f"--init needs {INIT_BINARY} (Debian tini)")
    from .security import seccomp_binding

    if seccomp_binding() is None:
        out.append("the seccomp filter needs python3-seccomp (containers will not start without it)")
    return out

