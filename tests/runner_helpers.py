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
