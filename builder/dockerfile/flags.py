"""Instruction flags (``--name=value``) checked the way docker's BFlags does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["FlagError", "parse_flags"]

BOOL, STRING, STRINGS = "bool", "string", "strings"


class FlagError(ValueError):
    """A flag the instruction does not accept, or a bad flag value."""


def parse_flags(words: Iterable[str], spec: Mapping[str, str]) -> dict[str, object]:
    """The flags used, by name: ``bool`` -> bool, ``string`` -> str, ``strings`` -> list.

    ``spec`` maps each accepted flag to its kind. Messages match docker's
    ("Unknown flag: x", "Missing a value on flag: x", ...).
    """
    used: dict[str, object] = {}
    for word in words:
        if not word.startswith("--"):
            raise FlagError(f"Arg should start with -- : {word}")
        if word == "--":
            break
        name, eq, value = word[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            raise FlagError(f"Unknown flag: {name}")
        if name in used and kind != STRINGS:
            raise FlagError(f"Duplicate flag specified: {name}")
        if kind == BOOL:
            if eq and not value:
                raise FlagError(f"Missing a value on flag: {name}")
            lower = value.lower()
            if lower not in ("", "true", "false"):
                raise FlagError(f"Expecting boolean value for flag {name}, not: {value}")
            used[name] = lower != "false"
        elif not eq:
            raise FlagError(f"Missing a value on flag: {name}")
        elif kind == STRINGS:
            used.setdefault(name, []).append(value)  # type: ignore[attr-defined]
        else:
            used[name] = value
    return used
