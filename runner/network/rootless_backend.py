"""The rootless network backend: a user-mode network stack (pasta, else slirp4netns) per container.

Same functions as :mod:`.cni_backend`, for the default network of a rootless
container.  A bridge needs root on the host; instead a helper process running as the
user gives the container's own network namespace an interface whose packets it turns
into ordinary sockets of the user's, so traffic leaves with the user's rights only.

- ``setup``: the namespace file (:mod:`.netns`), then the helper: ``pasta`` (Debian
  ``passt``, preferred: it forwards ``-p`` ports itself) daemonizes once the interface
  is configured, so the container never starts before its network; ``slirp4netns``
  signals readiness on a pipe.  The helper's pid and start time go into the teardown
  record before anything else can fail.
- ``teardown``: kill the helper (checked by start time, so a reused pid is never
  killed), unmount and delete the namespace file.
- The container cannot reach the host's loopback services: pasta runs with
  ``--no-map-gw`` and no inbound forwarding from the namespace (``-T none -U none``),
  slirp4netns with ``--disable-host-loopback``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

from ..errors import RunError
from ..procinfo import alive, proc_start_time
from . import names, netns, ports, state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..containers import Container

TOOLS = ("pasta", "slirp4netns")
MISSING = "rootless networking needs pasta (Debian package passt) or slirp4netns; install one, or use --network host or none"


def tool() -> str:
    """The helper this host has, pasta first; RunError naming both when neither is installed."""
    for name in TOOLS:
        if shutil.which(name):
            return name
    raise RunError(MISSING)


def _pasta(path: str, pidfile: str, mappings: list[dict[str, Any]]) -> int:
    tcp = [f"{m['hostIP']}/{m['hostPort']}:{m['containerPort']}" if m["hostIP"] else f"{m['hostPort']}:{m['containerPort']}"
           for m in mappings if m["protocol"] == "tcp"]
    udp = [f"{m['hostIP']}/{m['hostPort']}:{m['containerPort']}" if m["hostIP"] else f"{m['hostPort']}:{m['containerPort']}"
           for m in mappings if m["protocol"] == "udp"]
    argv = ["pasta", "--config-net", "--quiet", "--no-map-gw", "--netns", path, "--pid", pidfile,
            "-T", "none", "-U", "none"]
    argv += [a for spec in tcp for a in ("-t", spec)] or ["-t", "none"]
    argv += [a for spec in udp for a in ("-u", spec)] or ["-u", "none"]
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        reason = " ".join(line for line in done.stderr.splitlines() if "syslog" not in line).strip()
        raise RunError(f"pasta could not set up the container's network: {reason or done.returncode}")
    with open(pidfile) as fh:
        return int(fh.read().strip())


def _slirp4netns(path: str, mappings: list[dict[str, Any]]) -> int:
    if mappings:
        raise RunError("-p with slirp4netns is not supported by pybuild; install pasta (Debian package passt)")
    ready_r, ready_w = os.pipe()
    try:
        proc = subprocess.Popen(["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
                                 "--netns-type=path", f"--ready-fd={ready_w}", path, "tap0"],
                                pass_fds=(ready_w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(ready_w)
        ready_w = -1
        if os.read(ready_r, 1) != b"1":
            proc.wait()
            raise RunError("slirp4netns could not set up the container's network")
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    return proc.pid


def setup(container: Container) -> dict[str, str]:
    """Namespace and helper: ``{"netns", "hosts", "resolv_conf"}``."""
    root, cid, cfg = container.root, container.id, container.config
    helper = tool()
    path = state.netns_path(root, cid)
    mappings = ports.assign(cfg.get("ports", []))
    with state.Record(root, cid, create=True) as rec:
        rec.save({"cid": cid, "netns": path, "helper": None})
        netns.create(path)
        netns.write_sysctls(path, cfg.get("sysctls") or {})
        if helper == "pasta":
            pid = _pasta(path, path + ".pid", mappings)
        else:
            pid = _slirp4netns(path, mappings)
        rec.save({"cid": cid, "netns": path, "helper": [pid, proc_start_time(pid)], "tool": helper})
    container.save_state(network={"netns": path, "networks": {}, "ports": mappings, "backend": helper})
    dns = cfg.get("dns", {})
    return {"netns": path, "hosts": names.base_hosts(cfg["hostname"], ["127.0.1.1"], cfg.get("add_hosts", [])),
            "resolv_conf": names.resolv_conf(dns.get("servers", []), dns.get("search", []), dns.get("options", []))}


def started(container: Container) -> None:
    """Nothing to publish: a rootless container has no peers by name."""


def _undo(rec: state.Record) -> None:
    data = rec.data or {}
    helper = data.get("helper")
    if helper and alive(helper[0], helper[1]):
        try:
            os.kill(helper[0], signal.SIGTERM)
        except ProcessLookupError:
            pass
    path = data.get("netns")
    if path:
        netns.remove(path)
        try:
            os.unlink(path + ".pid")
        except FileNotFoundError:
            pass
    rec.delete()


def teardown(root: str, cid: str) -> list[str]:
    """Stop the helper and remove the namespace file; no errors to report."""
    with state.Record(root, cid) as rec:
        if rec.data is not None:
            _undo(rec)
    return []


def teardown_background(root: str, cid: str) -> None:
    """As :func:`teardown`: a signal and an unmount, nothing worth a forked child."""
    teardown(root, cid)


def sweep(root: str) -> None:
    """Tear down what containers whose owner died left (their helper may still run)."""
    from .cni_backend import _owner_alive

    for cid in state.recorded(root):
        if not _owner_alive(root, cid):
            teardown(root, cid)


def no_user_networks(*_args: object) -> Any:
    """Refuse what needs a user-defined network (connect, disconnect, container:, network create)."""
    raise RunError("rootless pybuild has no user-defined networks (they need root); "
                   "containers get their own network through pasta or slirp4netns")


connect = disconnect = shared = no_user_networks


def users(root: str, name: str) -> list[str]:
    """No container of a rootless pybuild is on a named network."""
    return []
