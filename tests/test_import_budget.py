"""Import budget (issue 14; issue 8 item 4): the cached-rebuild and run paths load no module
beyond their lists.

Every module costs start-up on each command (0.2-5 ms here, more for a tree like httpx's),
and these two paths are the ones users repeat.  ``PYBUILD_IMPORTS_OUT`` (builder/cli.py) makes
the real console script write ``sys.modules`` when the command returns; what the bare
interpreter already loads (``site`` and its ``.pth`` hooks) is subtracted, so the lists hold
only what pybuild pulls in.  A module that is new on a path fails the test: import it lazily,
where it is used, or if it must be there, regenerate the lists with
``PYBUILD_UPDATE_IMPORT_BUDGET=1 .venv/bin/pytest tests/test_import_budget.py`` and say why in
the commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI

LISTS = Path(__file__).parent / "data" / "import_budget"


def interpreter_modules() -> set[str]:
    """What the venv's interpreter loads before any pybuild code runs."""
    out = subprocess.run([sys.executable, "-c", "import sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def loaded_by(cli: CLI, tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.txt"
    cli(*args, env={"PYBUILD_IMPORTS_OUT": str(out)})
    return set(out.read_text().split()) - interpreter_modules()


def check_budget(name: str, loaded: set[str]) -> None:
    path = LISTS / f"{name}.txt"
    if os.environ.get("PYBUILD_UPDATE_IMPORT_BUDGET"):
        path.write_text("".join(f"{m}\n" for m in sorted(loaded)))
        pytest.skip(f"wrote {path}")
    allowed = set(path.read_text().split())
    extra = sorted(loaded - allowed)
    assert not extra, f"the {name} path now imports {len(extra)} more modules than {path.name} allows: {extra}"


def test_cached_rebuild_imports_only_its_list(pybuild: CLI, busybox_image: str, tmp_path: Path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "app.sh").write_text("#!/bin/sh\necho app\n")
    (context / "Dockerfile").write_text(f"FROM {busybox_image}\nCOPY app.sh /usr/local/bin/app\n"
                                        "RUN chmod 755 /usr/local/bin/app\nENV MODE=bench\nCMD [\"app\"]\n")
    pybuild("build", "-q", "-t", "budget:1", str(context))
    loaded = loaded_by(pybuild, tmp_path, "build", "-q", "-t", "budget:1", str(context))
    assert "builder.cli" in loaded  # the hook saw the command itself, not an empty process
    check_budget("cached_build", loaded)


def test_run_imports_only_its_list(pybuild: CLI, busybox_image: str, tmp_path: Path):
    pybuild("run", "--rm", busybox_image, "true")  # unpacks the image and fills the run cache
    loaded = loaded_by(pybuild, tmp_path, "run", "--rm", busybox_image, "true")
    assert "builder.commands.run" in loaded
    check_budget("run", loaded)
