"""Docker's rules for turning an image config plus ``run`` options into a process.

Pure functions, no I/O: entrypoint/cmd combination, environment merge, sizes.
"""

from __future__ import annotations

from .errors import RunError
from .spec import DEFAULT_PATH


def command_line(config: dict, args: list[str], entrypoint: str | None) -> list[str]:
    """The argv docker would run (moby's ``merge``).

    ``entrypoint`` None: the image's Entrypoint, then ``args`` or else the image's Cmd.
    ``entrypoint`` "": no entrypoint; ``args`` or else the image's Cmd.
    ``entrypoint`` "X": ``[X] + args``; the image's Cmd is dropped.
    """
    image_ep = list(config.get("Entrypoint") or [])
    image_cmd = list(config.get("Cmd") or [])
    if entrypoint:
        return [entrypoint] + list(args)
    cmd = list(args) or image_cmd
    return (image_ep if entrypoint is None else []) + cmd


def merge_env(image_env: list[str], overrides: list[str], host_env: dict[str, str]) -> list[str]:
    """Image Env with ``-e``/``--env-file`` entries applied (``K`` alone copies the host's K)."""
    merged: dict[str, str] = {}
    for item in image_env:
        key, _, value = item.partition("=")
        merged[key] = value
    for item in overrides:
        key, sep, value = item.partition("=")
        if not key:
            raise RunError(f"invalid environment variable: {item!r}")
        if sep:
            merged[key] = value
        elif key in host_env:
            merged[key] = host_env[key]
        else:
            merged.pop(key, None)
    merged.setdefault("PATH", DEFAULT_PATH)
    return [f"{k}={v}" for k, v in merged.items()]


def read_env_file(path: str, what: str = "env file") -> list[str]:
    """Lines of a docker ``--env-file`` (or ``--label-file``, same format): ``K=V`` or ``K``;
    blank lines and ``#`` comments skipped."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as err:
        raise RunError(f"cannot read {what} {path}: {err.strerror}") from None
    return [line.lstrip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str, what: str = "size") -> int:
    """Docker's RAMInBytes: ``64m``, ``1g``, ``512k``, ``1.5GB``, ``1048576``."""
    value = text.strip().lower()
    if value.endswith("b") and len(value) > 1 and value[-2] in _UNITS:
        value = value[:-1]
    number, unit = (value[:-1], value[-1]) if value and value[-1] in _UNITS else (value, "")
    try:
        amount = float(number.strip())
    except ValueError:
        amount = -1.0
    if amount < 0 or not number.strip().replace(".", "", 1).isdigit():
        raise RunError(f"invalid {what} {text!r}: use a number with an optional unit b, k, m or g (e.g. 64m)")
    return int(amount * _UNITS[unit])


_SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "KILL": 9,
    "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17,
    "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25,
    "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "PWR": 30, "SYS": 31,
}


def parse_signal(text: str) -> int:
    """``SIGTERM``, ``TERM``, ``15`` or ``RTMIN+3`` as a number."""
    name = text.strip().upper().removeprefix("SIG")
    if name.isdigit() and 0 < int(name) < 65:
        return int(name)
    if name in _SIGNALS:
        return _SIGNALS[name]
    offset = name.removeprefix("RTMIN+")
    if offset != name and offset.isdigit() and int(offset) <= 30:
        return 34 + int(offset)
    raise RunError(f"invalid signal: {text}")
