"""Static C test programs from ``tests/data``, compiled at test time for test images."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def build_static(source: Path, dest: Path) -> None:
    """Compile ``source`` with ``gcc -static`` into ``dest`` (the test is skipped without gcc)."""
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the static test program")
    subprocess.run(["gcc", "-static", "-O2", "-o", str(dest), str(source)], check=True, capture_output=True)
