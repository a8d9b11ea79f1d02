"""Metadata instructions applied to an image's run config, as docker's dispatchers do.

Shared by the build executor (each such instruction adds an ``empty_layer`` history
entry) and ``pybuild import --change`` (no history).  ``ConfigEditor.apply`` takes an
already expanded instruction (see :class:`builder.dockerfile.StageScope`) and returns
the text docker's legacy builder puts in the history after ``/bin/sh -c #(nop)``.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from builder.dockerfile import instructions as ins

# what ``docker import --change`` / ``docker commit --change`` accept (docker's validCommitCommands)
CHANGE_INSTRUCTIONS = frozenset(("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
                                 "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"))


class ConfigEditor:
    """Edits ``image_config`` (a whole image config: ``config`` is the run config).

    ``cmd_set`` records whether a CMD was given in this build (or this list of
    changes): an ENTRYPOINT after it keeps it, otherwise ENTRYPOINT resets Cmd.
    """

    def __init__(self, image_config: dict[str, Any]):
        self.image_config = image_config
        image_config.setdefault("config", {})
        self.cmd_set = False

    @property
    def run_config(self) -> dict[str, Any]:
        return self.image_config["config"]

    @property
    def shell(self) -> list[str]:
        """The shell that shell-form RUN, CMD, ENTRYPOINT and HEALTHCHECK use."""
        return list(self.run_config.get("Shell") or ins.DEFAULT_SHELL)

    def set_workdir(self, value: str) -> str:
        """Set WorkingDir (a relative value joins the current one); return the result."""
        rc = self.run_config
        if value.startswith("/"):
            path = value  # docker keeps an absolute WORKDIR as written
        else:
            path = "/" + os.path.normpath(os.path.join(rc.get("WorkingDir") or "/", value)).lstrip("/")
        rc["WorkingDir"] = path
        return path

    def apply(self, inst: ins.Instruction) -> str:
        """Apply a metadata instruction; return its history text (``ENV K=V``...)."""
        rc = self.run_config
        if isinstance(inst, ins.Env):
            env = rc.get("Env")
            if env is None:
                env = rc["Env"] = []
            for key, value in inst.pairs:  # in place: the executor's scope shares this list
                _set_env(env, key, value)
            return "ENV " + " ".join(f"{k}={v}" for k, v in inst.pairs)
        if isinstance(inst, ins.Label):
            _owned(rc, "Labels", dict).update(inst.pairs)
            return "LABEL " + " ".join(f"{k}={v}" for k, v in inst.pairs)
        if isinstance(inst, ins.Cmd):
            rc["Cmd"] = inst.argv(self.shell)
            self.cmd_set = True
            return f"CMD {go_strings(rc['Cmd'])}"
        if isinstance(inst, ins.Entrypoint):
            argv = inst.argv(self.shell)
            rc["Entrypoint"] = argv or None
            if not self.cmd_set:
                rc["Cmd"] = None
            return f"ENTRYPOINT {go_strings(argv)}"
        if isinstance(inst, ins.Expose):
            _owned(rc, "ExposedPorts", dict).update(dict.fromkeys(inst.exposed_ports(), {}))
            return "EXPOSE " + " ".join(inst.ports)  # sorted as written, before expansion
        if isinstance(inst, ins.Volume):
            _owned(rc, "Volumes", dict).update(dict.fromkeys(inst.paths, {}))
            return f"VOLUME [{' '.join(inst.paths)}]"
        if isinstance(inst, ins.User):
            rc["User"] = inst.value
            return f"USER {inst.value}"
        if isinstance(inst, ins.StopSignal):
            rc["StopSignal"] = check_signal(inst)
            return f"STOPSIGNAL {inst.value}"
        if isinstance(inst, ins.Healthcheck):
            rc["Healthcheck"] = _merge_healthcheck(inst.config(), rc.get("Healthcheck"))
            return f"HEALTHCHECK {_healthcheck_text(inst)}"
        if isinstance(inst, ins.Shell):
            rc["Shell"] = list(inst.shell)
            return f"SHELL [{' '.join(inst.shell)}]"
        if isinstance(inst, ins.Onbuild):
            _owned(rc, "OnBuild", list).append(inst.expression)
            return f"ONBUILD {inst.expression}"
        if isinstance(inst, ins.Maintainer):
            self.image_config["author"] = inst.author
            return f"MAINTAINER {inst.author}"
        if isinstance(inst, ins.Workdir):
            return f"WORKDIR {self.set_workdir(inst.value)}"
        raise inst.error(f"{inst.name} does not change the image config")


def _owned(rc: dict[str, Any], key: str, kind: type) -> Any:
    """``rc[key]``, made an empty ``kind`` when unset or null, to be updated in place.

    In place, not copied and replaced: a copy per instruction made N LABEL (or EXPOSE,
    VOLUME, ONBUILD) lines cost O(N^2).  The run config belongs to its editor (the
    executor deep-copies a base image's config into each stage).
    """
    value = rc.get(key)
    if value is None:
        value = rc[key] = kind()
    return value


def nop_created_by(shell: list[str], text: str, metadata: bool = True) -> str:
    """A history ``created_by`` for a step that ran no command: the shell, ``#(nop)`` and
    the text (docker puts two spaces before a metadata instruction's text, one otherwise)."""
    return f"{' '.join(shell)} #(nop) {' ' if metadata else ''}{text}"


def go_quote(value: str, quote: str = '"') -> str:
    """``value`` quoted like Go's ``strconv.Quote`` (``%q``), which docker's history uses."""
    out = []
    for ch in value:
        if ch in (quote, "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return quote + "".join(out) + quote


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_strings(values) -> str:
    """A string list as Go's ``%q`` prints it: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def go_duration(ns: int) -> str:
    """A duration in nanoseconds as Go's ``time.Duration.String`` (``1m30s``, ``500ms``)."""
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return sign + out + _decimal(rest, 1_000_000_000) + "s"


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    return f"{whole}.{str(frac).rjust(len(str(unit)) - 1, '0').rstrip('0')}"


def _healthcheck_text(inst: ins.Healthcheck) -> str:
    """docker 20.10 prints the HealthConfig struct with ``%q``: ``&{["CMD" "x"] "5s" "0s" "0s" '\\x03'}``."""
    durations = " ".join(go_quote(go_duration(v or 0)) for v in (inst.interval, inst.timeout, inst.start_period))
    return f"&{{{go_strings(inst.test)} {durations} {go_quote(chr(inst.retries or 0), chr(39))}}}"


def _set_env(env: list[str], key: str, value: str) -> None:
    item = f"{key}={value}"
    for i, existing in enumerate(env):
        if existing.partition("=")[0] == key:
            env[i] = item
            return
    env.append(item)


def _merge_healthcheck(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """docker 20.10's legacy builder fills a HEALTHCHECK's unset durations and retries from
    the one before it (its container-create merge writes through a shared pointer)."""
    for key in ("Interval", "Timeout", "StartPeriod", "Retries"):
        if not new.get(key) and old and old.get(key):
            new[key] = old[key]
    return new


def check_signal(inst: ins.StopSignal) -> str:
    """The STOPSIGNAL value if docker accepts it (a number or a known name), else an error."""
    value = inst.value
    name = value.upper()
    if value.isdigit() or (name if name.startswith("SIG") else "SIG" + name) in signal.Signals.__members__ \
            or name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
        return value
    raise inst.error(f"Invalid signal: {value}")


def apply_changes(image_config: dict[str, Any], changes: list[str]) -> None:
    """``docker import --change`` / ``commit --change``: Dockerfile instructions applied to
    ``image_config`` in order, ``$VAR`` expanded against its Env; no history is added.

    Only :data:`CHANGE_INSTRUCTIONS` are accepted (docker 20.10's set plus STOPSIGNAL,
    which later dockers accept); anything else is a :class:`PybuildError`.
    """
    from builder.dockerfile import parse, parse_instruction  # noqa: PLC0415
    from builder.dockerfile.stages import BuildArgs, StageScope  # noqa: PLC0415
    from registry.errors import PybuildError  # noqa: PLC0415

    editor = ConfigEditor(image_config)
    scope = StageScope(BuildArgs(), editor.run_config.get("Env") or [])
    doc = parse("\n".join(changes), "--change")  # joined, as docker does
    for node in doc.nodes:
        name = (node.keyword or node.cmd).upper()
        if name not in CHANGE_INSTRUCTIONS:
            raise PybuildError(f"{name} is not a valid change command (use one of "
                               f"{', '.join(sorted(CHANGE_INSTRUCTIONS))})")
        editor.apply(scope.apply(parse_instruction(node, doc.path, doc.escape)))
