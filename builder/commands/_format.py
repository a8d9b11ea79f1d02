"""``--format`` and ``--filter`` for the listing commands (images, ps), as docker's CLI reads them.

``--format table`` (the default) and ``json`` keep their meaning; anything else is a Go
template run on each row (``builder/gotemplate.py``); ``table TEMPLATE`` adds a header
row and aligns the tab-separated columns.  ``--filter KEY=VALUE`` is repeatable: values
of one key are alternatives, different keys must all match, as docker combines them.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from typing import Any, Callable

from registry.errors import PybuildError


def render(fmt: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> None:
    """Print ``rows`` through a Go template (``fmt`` is neither ``table`` nor ``json``)."""
    from builder.gotemplate import Template

    table = fmt.startswith("table ")
    template = Template(fmt[len("table "):] if table else fmt)
    lines = [template.render(row) for row in rows]
    if not table:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    head = Template(fmt[len("table "):]).render({k: headers.get(k, k.upper()) for k in rows[0]} if rows else
                                                 {k: v for k, v in headers.items()})
    cells = [line.split("\t") for line in [head] + lines]
    width = max(len(c) for c in cells)
    widths = [max(len(c[i]) if i < len(c) else 0 for c in cells) for i in range(width)]
    for row in cells:
        sys.stdout.write("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")


def print_json(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row) + "\n")


def parse_filters(values: list[str], known: tuple[str, ...]) -> dict[str, list[str]]:
    """``KEY=VALUE`` items grouped by key; an unknown key is an error, as in docker."""
    out: dict[str, list[str]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or key not in known:
            raise PybuildError(f"invalid filter {item!r}: use one of {', '.join(k + '=...' for k in known)}")
        out.setdefault(key, []).append(value)
    return out


def label_matches(labels: dict[str, str] | None, wanted: str) -> bool:
    """``label=KEY`` (present) or ``label=KEY=VALUE``."""
    key, sep, value = wanted.partition("=")
    labels = labels or {}
    return key in labels and (not sep or labels[key] == value)


def reference_matches(names: list[str], pattern: str) -> bool:
    """docker's ``reference=`` filter: a glob on ``name`` or ``name:tag`` (``*`` stays in a component)."""
    for name in names:
        base = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
        for candidate in (name, base):
            if fnmatch.fnmatchcase(candidate, pattern) and (pattern.count("/") == candidate.count("/")):
                return True
    return False


def keep(rows: list[dict[str, Any]], filters: dict[str, list[str]],
         tests: dict[str, Callable[[dict[str, Any], str], bool]]) -> list[dict[str, Any]]:
    return [row for row in rows if all(any(tests[key](row, v) for v in values) for key, values in filters.items())]
