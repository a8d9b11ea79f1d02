"""Container output on the wire: docker's stream framing and following a container's log."""

from __future__ import annotations

import json
import os
import struct
import time
from typing import Callable, Iterator

from runner import containers, stdio

_STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}


def frame(stream: str, data: bytes) -> bytes:
    """One frame of the multiplexed stream: type, three zero bytes, big-endian size, data."""
    return struct.pack(">BxxxL", _STREAM_IDS[stream], len(data)) + data


def open_log(container: containers.Container, create: bool = False):
    """The container's log file, opened before anything can remove it; ``create`` makes it
    (empty) when the container has not started yet, so its first line is not missed."""
    path = container.path(stdio.LOG_FILE)
    if create:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600))
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def still_writing(container: containers.Container) -> Callable[[], bool]:
    """Whether the container may still log: created (not started yet), running or restarting."""
    def check() -> bool:
        container.reload()
        return containers.refresh(container) is not None and container.state.get("status") in (
            "created", "running", "restarting")
    return check


def records(fh, follow: bool, alive: Callable[[], bool], poll: float = 0.05) -> Iterator[dict]:
    """Log records as they are; with ``follow``, keep reading while ``alive()``, then read
    what was written before the end once more."""
    buffer = b""
    while True:
        chunk = fh.readline()
        if chunk.endswith(b"\n"):
            yield json.loads(buffer + chunk)
            buffer = b""
            continue
        buffer += chunk
        if not follow:
            return
        if not alive():
            follow = False
            continue
        time.sleep(poll)


def payload(record: dict, timestamps: bool) -> bytes:
    """A record's bytes, with docker's timestamp prefix when asked for."""
    data = record["log"].encode("utf-8", "surrogateescape")
    return (record["time"].encode() + b" " + data) if timestamps else data
