"""Healthchecks of containers started through the service (docker's HEALTHCHECK and
``HostConfig``-less ``Healthcheck``): the test runs inside the container as an exec,
every ``Interval``; the result is ``State.Health`` in inspect and ``(healthy)`` in ps.

The check's definition is kept in the container's directory (``healthcheck.json``, the
container's own over the image's) and its results in ``health.json``, so a restarted
service reads them and goes on checking.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

from runner import containers, lifecycle
from runner.containers import Container, now

_DEFAULTS = {"Interval": 30_000_000_000, "Timeout": 30_000_000_000, "Retries": 3, "StartPeriod": 0}
_WATCHED: set[str] = set()
_LOCK = threading.Lock()
_OUTPUT_LIMIT = 4096  # docker keeps this much of a check's output


def configure(container: Container, given: dict[str, Any] | None) -> None:
    """Record the check (the container's fields over the image's); none for ``NONE``."""
    from runner import images

    _, image_config, _ = images.resolve(container.root, container.config["image"], pull="never")
    check = {**_DEFAULTS, **{k: v for k, v in (image_config.get("Healthcheck") or {}).items() if v},
             **{k: v for k, v in (given or {}).items() if v}}
    test = check.get("Test") or []
    if not test or test[0] == "NONE":
        return
    with open(container.path("healthcheck.json"), "w") as fh:
        json.dump(check, fh)


def _check(container: Container) -> dict[str, Any] | None:
    try:
        with open(container.path("healthcheck.json")) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def state(container: Container) -> dict[str, Any] | None:
    """``State.Health`` (``starting`` until the first result), or None without a check."""
    if _check(container) is None:
        return None
    try:
        with open(container.path("health.json")) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"Status": "starting", "FailingStreak": 0, "Log": []}


def _save(container: Container, health: dict[str, Any]) -> None:
    tmp = container.path(f"health.json.{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(health, fh)
    os.replace(tmp, container.path("health.json"))


def _argv(test: list[str]) -> list[str]:
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])


def _probe(container: Container, check: dict[str, Any]) -> tuple[int, str]:
    """Run the test once in the container: (exit code, output); a timeout counts as failed."""
    read_end, write_end = os.pipe()
    try:
        proc = lifecycle.start_exec(container, _argv(check["Test"]), [], None, None, False,
                                    (None, write_end, write_end))
    except Exception as err:
        os.close(read_end)
        return 1, str(err)
    finally:
        os.close(write_end)
    output = bytearray()
    timer = threading.Timer(check["Timeout"] / 1e9, proc.signal, (signal.SIGKILL,))
    timer.start()
    try:
        while chunk := os.read(read_end, 65536):
            if len(output) < _OUTPUT_LIMIT:
                output += chunk[: _OUTPUT_LIMIT - len(output)]
        code = proc.wait()
    finally:
        timer.cancel()
        os.close(read_end)
    return code, output.decode(errors="replace")


def _loop(root: str, cid: str) -> None:
    started = time.monotonic()
    while True:
        try:
            container = containers.lookup(root, cid)
        except containers.NoSuchContainer:
            return
        check = _check(container)
        if check is None or not container.running:
            return
        time.sleep(check["Interval"] / 1e9)
        container.reload()
        if not container.running:
            return
        begun = now()
        code, output = _probe(container, check)
        health = state(container) or {"Status": "starting", "FailingStreak": 0, "Log": []}
        health["Log"] = (health["Log"] + [{"Start": begun, "End": now(), "ExitCode": code, "Output": output}])[-5:]
        if code == 0:
            health.update(Status="healthy", FailingStreak=0)
        elif time.monotonic() - started >= check["StartPeriod"] / 1e9:
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= check["Retries"]:
                health["Status"] = "unhealthy"
        _save(container, health)


def watch(root: str, container: Container) -> None:
    """Check ``container`` from its start while it runs (one thread; nothing without a check)."""
    if _check(container) is None:
        return
    try:
        os.unlink(container.path("health.json"))  # a new start begins as "starting"
    except FileNotFoundError:
        pass
    watch_again(root, container)


def watch_again(root: str, container: Container) -> None:
    """Go on checking a running container (after a restart of the service)."""
    with _LOCK:
        if container.id in _WATCHED:
            return
        _WATCHED.add(container.id)

    def run() -> None:
        try:
            _loop(root, container.id)
        finally:
            with _LOCK:
                _WATCHED.discard(container.id)

    threading.Thread(target=run, daemon=True, name=f"health-{container.id[:12]}").start()
