"""Call CNI plugins with the CNI protocol, for a network configuration list.

A plugin is an executable found on ``CNI_PATH``; it gets ``CNI_COMMAND``,
``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_PATH`` in its environment
and its own configuration (with ``name``, ``cniVersion``, ``runtimeConfig`` and the
previous plugin's ``prevResult``) on stdin; a result or an error comes back as JSON
on stdout.  ADD runs the list in order, each plugin getting the previous result;
DEL runs it backwards with the result ADD gave, and keeps going past a failure so
that one broken step never leaves the others' state behind.
"""

from __future__ import annotations

import json
import os
import subprocess

from ..errors import RunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CNI_PATH = "/usr/lib/cni:/opt/cni/bin"


class CNIError(RunError):
    """A plugin failed; the message names the plugin, the command and its reason."""


def cni_path() -> str:
    """Where plugins are looked up: ``$PYBUILD_CNI_PATH`` or Debian's and upstream's dirs."""
    return os.environ.get("PYBUILD_CNI_PATH") or DEFAULT_CNI_PATH


def _plugin(kind: str) -> str:
    for folder in cni_path().split(":"):
        path = os.path.join(folder, kind)
        if folder and os.access(path, os.X_OK):
            return path
    raise CNIError(f"CNI plugin {kind!r} not found in {cni_path()}; install containernetworking-plugins")


def _env(command: str, cid: str, netns: str, ifname: str) -> dict[str, str]:
    path = os.environ.get("PATH") or "/usr/bin:/bin"
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
            "CNI_PATH": cni_path(), "PATH": f"{path}:/usr/sbin:/sbin"}  # plugins run iptables


def call(command: str, conf: dict[str, Any], cid: str, netns: str, ifname: str) -> dict[str, Any] | None:
    """Run one plugin (``conf["type"]``); its JSON result for ADD, else None."""
    proc = subprocess.run([_plugin(conf["type"])], input=json.dumps(conf).encode(), capture_output=True,
                          env=_env(command, cid, netns, ifname))
    if proc.returncode != 0:
        try:
            reply = json.loads(proc.stdout)
            reason = reply.get("msg", "") + (f": {reply['details']}" if reply.get("details") else "")
        except ValueError:
            reason = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise CNIError(f"network plugin {conf['type']} ({command} on network {conf.get('name')}) failed: "
                       f"{reason or f'exit status {proc.returncode}'}")
    if command != "ADD":
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise CNIError(f"network plugin {conf['type']} returned no valid result") from None


def plugin_conf(conflist: dict[str, Any], plugin: dict[str, Any], runtime: dict[str, Any],
                prev: dict[str, Any] | None) -> dict[str, Any]:
    """What one plugin of the list reads on stdin: only the runtime values it declares."""
    conf = dict(plugin, name=conflist["name"], cniVersion=conflist["cniVersion"])
    wanted = plugin.get("capabilities") or {}
    given = {key: value for key, value in runtime.items() if wanted.get(key) and value}
    if given:
        conf["runtimeConfig"] = given
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def _needed(plugin: dict[str, Any], runtime: dict[str, Any]) -> bool:
    """portmap without mappings does nothing; skipping it saves a plugin start on ADD and DEL."""
    return plugin["type"] != "portmap" or bool(runtime.get("portMappings"))


def add(conflist: dict[str, Any], cid: str, netns: str, ifname: str, runtime: dict[str, Any]) -> dict[str, Any]:
    """ADD every plugin of the list in order; the final result (interfaces, ips, routes)."""
    result: dict[str, Any] | None = None
    for plugin in filter(lambda p: _needed(p, runtime), conflist["plugins"]):
        result = call("ADD", plugin_conf(conflist, plugin, runtime, result), cid, netns, ifname) or result
    return result or {}


def delete(conflist: dict[str, Any], cid: str, netns: str, ifname: str, runtime: dict[str, Any],
           result: dict[str, Any] | None) -> None:
    """DEL every plugin in reverse order, all of them even if one fails; raises the first failure."""
    first: CNIError | None = None
    for plugin in reversed([p for p in conflist["plugins"] if _needed(p, runtime)]):
        try:
            call("DEL", plugin_conf(conflist, plugin, runtime, result), cid, netns, ifname)
        except CNIError as err:
            first = first or err
    if first is not None:
        raise first

