"""Helpers for the runner and attack tests: image variants, waiting, a bare sandbox spec."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from registry.store import Store
from runner.spec import SandboxSpec

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces, mounts and cgroups need root")


def image_variant(root: Path, base: str, name: str, **config: object) -> str:
    """Commit ``base``'s layers under ``name`` with container-config keys replaced."""
    store = Store(root)
    image = store.image(base)
    new_config = dict(image.config)
    new_config["config"] = {**(image.config.get("config") or {}), **config}
    store.commit_image(new_config, image.layers, tags=[name])
    return name


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def bare_spec(tmp_path: Path, rootfs: Path, argv: list[str], **fields: object) -> SandboxSpec:
    """A spec over one lowerdir with fresh upper/work/state dirs under ``tmp_path``."""
    for sub in ("upper", "work", "state"):
        (tmp_path / sub).mkdir(exist_ok=True)
    fields.setdefault("env", ["PATH=/bin"])
    return SandboxSpec(argv=argv, lowerdirs=[str(rootfs)], upperdir=str(tmp_path / "upper"),
                       workdir=str(tmp_path / "work"), state_dir=str(tmp_path / "state"), **fields)


def container_id(root: Path, name: str) -> str:
    """The full id of the container called ``name`` under ``root``."""
    for cid in os.listdir(root / "containers"):
        config = root / "containers" / cid / "config.json"
        if not cid.startswith(".") and config.exists() and json.loads(config.read_text())["name"] == name:
            return cid
    raise AssertionError(f"no container named {name}")


def container_state(root: Path, name: str) -> dict:
    """The ``state.json`` of the container called ``name``."""
    return json.loads((root / "containers" / container_id(root, name) / "state.json").read_text())


def cgroup_dir(pid: int, controller: str) -> Path:
    """The host directory of the cgroup that ``pid`` is in for ``controller`` (``pids``, ``memory``...).

    Read from ``/proc/PID/cgroup`` and the host's cgroup mounts, not from pybuild's code, so a
    test sees where the kernel put the process: the v1 hierarchy that carries the controller,
    else the v2 (unified) hierarchy.  Fails when neither holds it, so no assertion on the
    directory can pass vacuously.
    """
    mounts = []  # (fstype, root inside the hierarchy, mount point, super options)
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, right = line.split(" - ", 1)
            fields, (fstype, _source, options) = left.split(), right.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                mounts.append((fstype, fields[3], fields[4], options.split(",")))
    with open(f"/proc/{pid}/cgroup") as fh:
        memberships = [line.rstrip("\n").split(":", 2) for line in fh]
    for hid, controllers, path in memberships:  # v1 first: a hybrid host binds controllers there
        if hid != "0" and controller in controllers.split(","):
            for fstype, root, point, options in mounts:
                if fstype == "cgroup" and controller in options:
                    return Path(point) / os.path.relpath(path, root)
    for hid, _controllers, path in memberships:
        if hid == "0":
            for fstype, root, point, _options in mounts:
                if fstype == "cgroup2":
                    found = Path(point) / os.path.relpath(path, root)
                    if controller in (found.parent / "cgroup.subtree_control").read_text().split():
                        return found
    raise AssertionError(f"process {pid} is in no cgroup with the {controller} controller (v1 or v2)")
