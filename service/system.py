"""``/_ping``, ``/version``, ``/info``: what clients ask before anything else."""

from __future__ import annotations

import os
import platform
from typing import Any

from .http import API_VERSION, MIN_API_VERSION, Request


def ping(req: Request) -> None:
    req.send(200, b"OK", "text/plain; charset=utf-8", {"Cache-Control": "no-cache, no-store, must-revalidate",
                                                       "Builder-Version": "1"})


def version(req: Request) -> dict[str, Any]:
    from builder.cli import VERSION

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "Platform": {"Name": "pybuild"},
        "Components": [{"Name": "Engine", "Version": VERSION,
                        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                                    "Arch": arch}}],
        "Version": VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": arch,
        "KernelVersion": platform.release(), "BuildTime": "",
    }


def info(req: Request) -> dict[str, Any]:
    from registry.store import Store
    from runner import cgroups
    from runner.containers import all_containers

    found = all_containers(req.root)
    running = sum(1 for c in found if c.running)
    stopped = sum(1 for c in found if c.state.get("status") == "exited")
    images = sum(1 for _ in Store(req.root).entries())
    return {
        "ID": "pybuild", "Containers": len(found), "ContainersRunning": running, "ContainersPaused": 0,
        "ContainersStopped": stopped, "Images": images, "Driver": "overlay", "DriverStatus": [],
        "DockerRootDir": req.root, "Name": platform.node(), "OperatingSystem": "pybuild", "OSType": "linux",
        "Architecture": platform.machine(), "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "KernelVersion": platform.release(), "ServerVersion": version(req)["Version"],
        "CgroupDriver": "cgroupfs", "CgroupVersion": cgroups.detect().removeprefix("v"),
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["json-file"]},
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"]},
        "SecurityOptions": ["name=seccomp,profile=default"], "Warnings": [], "LoggingDriver": "json-file",
        "Runtimes": {"pybuild": {"path": "pybuild"}}, "DefaultRuntime": "pybuild", "Swarm": {"LocalNodeState": "inactive"},
        "Labels": [], "ExperimentalBuild": False, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "IndexServerAddress": "https://index.docker.io/v1/",
    }


def startup(root: str) -> None:
    """Pick up the containers a previous service left (see :func:`containers.resume`)."""
    from . import containers

    containers.resume(root)


ROUTES = [
    ("GET", r"/_ping", ping),
    ("GET", r"/version", version),
    ("GET", r"/info", info),
]
