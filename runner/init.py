"""The sandbox shim as a fresh process: ``main([SPEC_FD, REPORT_FD])``.

Used when the caller has threads (fork would be unsafe there); started by
:mod:`runner.sandbox` as ``python -S -c`` with this tree on ``sys.path`` (also works
as ``python -m runner.init SPEC_FD REPORT_FD``).  Reads the spec (and, for exec,
the target) as JSON from SPEC_FD, then does exactly what a forked shim does.
"""

from __future__ import annotations

import json
import os
import sys

from .sandbox import shim
from .spec import SandboxSpec


def main(argv: list[str]) -> None:
    """Read the spec and become the shim; never returns."""
    spec_fd, report = int(argv[0]), int(argv[1])
    with os.fdopen(spec_fd, "rb") as fh:
        payload = json.loads(fh.read())
    os.set_inheritable(report, False)
    target = payload["target"]
    shim(SandboxSpec.from_json(payload["spec"]), report, tuple(target) if target else None)


if __name__ == "__main__":
    main(sys.argv[1:])
