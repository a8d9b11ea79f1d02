"""The sandbox shim's entry point: ``main()`` in a fresh interpreter.

Started by :mod:`runner.sandbox` as ``python -S -c`` (run from a sealed view of the
interpreter, see :mod:`runner.exeseal`) with this tree on ``sys.path``.  The spec
(and, for exec, the target) arrives marshalled on fd 3, the report pipe is fd 4,
stdio is the container's; every other descriptor is closed before anything runs.
"""

from __future__ import annotations

import marshal
import os

from . import syscalls as sc
from .sandbox import shim
from .spec import SandboxSpec

SPEC_FD, REPORT_FD = 3, 4


def main() -> None:
    """Read the spec and become the shim; never returns."""
    with os.fdopen(SPEC_FD, "rb") as fh:
        payload = marshal.loads(fh.read())
    os.set_inheritable(REPORT_FD, False)
    sc.close_range(REPORT_FD + 1)  # nothing else of the caller's reaches the container
    target = payload["target"]
    shim(SandboxSpec.from_json(payload["spec"]), REPORT_FD, tuple(target) if target else None)
