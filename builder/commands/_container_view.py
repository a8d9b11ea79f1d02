"""A container as ``docker container inspect`` shapes it (for ``pybuild inspect``)."""

from __future__ import annotations

from typing import Any


def _ports(mappings: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for m in mappings:
        out.setdefault(f"{m['containerPort']}/{m['protocol']}", []).append(
            {"HostIp": m["hostIP"] or "0.0.0.0", "HostPort": str(m["hostPort"])})
    return out


def describe(container) -> dict[str, Any]:
    """The fields users reach for: state, config, labels, mounts, networks and ports."""
    cfg, st = container.config, container.state
    net = st.get("network") or {}
    restart = cfg.get("restart") or {"name": "no", "max": 0}
    return {
        "Id": container.id,
        "Created": cfg.get("created", ""),
        "Path": cfg["argv"][0] if cfg["argv"] else "",
        "Args": cfg["argv"][1:],
        "State": {"Status": st.get("status"), "Running": st.get("status") == "running",
                  "Restarting": st.get("status") == "restarting", "OOMKilled": bool(st.get("oom_killed")),
                  "Pid": st.get("pid", 0) if st.get("status") == "running" else 0,
                  "ExitCode": st.get("exit_code", 0), "Error": st.get("error", ""),
                  "StartedAt": st.get("started_at", ""), "FinishedAt": st.get("finished_at", "")},
        "Image": cfg.get("image_id", ""),
        "Name": "/" + container.name,
        "RestartCount": st.get("restart_count", 0),
        "HostConfig": {"NetworkMode": cfg.get("network", "host"), "PortBindings": _ports(cfg.get("ports", [])),
                       "RestartPolicy": {"Name": restart["name"], "MaximumRetryCount": restart["max"]},
                       "AutoRemove": bool(cfg.get("rm")), "Privileged": bool(cfg.get("privileged")),
                       "ReadonlyRootfs": bool(cfg.get("readonly_rootfs")), "CapAdd": cfg.get("cap_add", []),
                       "CapDrop": cfg.get("cap_drop", []), "Sysctls": cfg.get("sysctls", {}),
                       "ExtraHosts": cfg.get("add_hosts", []), "Dns": (cfg.get("dns") or {}).get("servers", [])},
        "Mounts": [{"Type": "volume" if m.get("options") == "populate" else m["type"], "Source": m.get("source") or "",
                    "Destination": m["target"], "RW": not m.get("readonly")} for m in cfg.get("mounts", [])],
        "Config": {"Hostname": cfg.get("hostname", ""), "User": cfg.get("user", ""), "Env": cfg.get("env", []),
                   "Cmd": cfg["argv"], "Image": cfg.get("image", ""), "WorkingDir": cfg.get("cwd", ""),
                   "Labels": cfg.get("labels", {}), "StopTimeout": cfg.get("stop_timeout")},
        "NetworkSettings": {
            "Ports": _ports(net.get("ports", [])),
            "Networks": {name: {"IPAddress": n["ip"], "IPPrefixLen": n["prefix"], "Gateway": n["gateway"],
                                "MacAddress": n["mac"], "Aliases": n["aliases"]}
                         for name, n in (net.get("networks") or {}).items()},
        },
    }
