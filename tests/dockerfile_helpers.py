"""Helpers for the Dockerfile front-end tests: build a small context with docker."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


def write_context(ctx: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (relative path -> content) under ``ctx``; a trailing ``/`` makes a dir."""
    for rel, content in files.items():
        path = ctx / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return ctx


def docker_build(ctx: Path, dockerfile: str = "Dockerfile", *args: str) -> tuple[int, str, str | None]:
    """``docker build`` with the legacy builder: (exit code, output, image id or None)."""
    proc = subprocess.run(["docker", "build", "--force-rm", "-f", str(ctx / dockerfile), *args, str(ctx)],
                          capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"},
                          timeout=120)
    built = [line for line in proc.stdout.splitlines() if line.startswith("Successfully built ")]
    image = built[-1].split()[-1] if proc.returncode == 0 and built else None
    return proc.returncode, proc.stdout + proc.stderr, image


def docker_config(image: str) -> dict:
    """The image's ``Config`` as ``docker inspect`` shows it."""
    out = subprocess.run(["docker", "inspect", image], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["Config"]


def docker_rmi(image: str | None) -> None:
    if image:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def docker_error(output: str) -> str:
    """The last error line of a failed docker build, without docker's prefixes."""
    lines = [line for line in output.strip().splitlines() if line.strip() and "DEPRECATED" not in line]
    last = lines[-1]
    for prefix in ("Error response from daemon: ",):
        if last.startswith(prefix):
            last = last[len(prefix):]
    return last
