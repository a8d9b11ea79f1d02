"""runner/overlay: one option builder for the runner's and the builder's overlay mounts.

The tar writer reads an upper dir as the layer, so every writable mount must turn off
redirect_dir, metacopy and index whatever the kernel's defaults (the build's COPY/ADD/
WORKDIR mounts had drifted and left them to the kernel).  The kernel only lists these
options in mountinfo when they differ from its defaults, so the mount is checked
through the options pybuild passes, captured at the mount call.
"""

from __future__ import annotations

import os

import pytest

from builder.build import mounting
from runner import syscalls
from runner.overlay import DIFF_OPTIONS, overlay_options
from runner_helpers import needs_root


def test_options_keep_the_upper_dir_a_plain_diff():
    for upper in (None, "/u"):
        _, data = overlay_options(["/s/a", "/s/b"], upper, "/w" if upper else None)
        assert data.endswith("," + DIFF_OPTIONS)
    cwd, data = overlay_options(["/s/a", "/s/b"], "/u", "/w", top="/init")
    assert cwd == "/s" and data.startswith("lowerdir=/init:b:a,upperdir=/u,workdir=/w,volatile,")


def test_too_many_layers_is_a_clear_error():
    with pytest.raises(OSError, match="exceed one page"):
        overlay_options([f"/snapshots/{'x' * 60}{i}" for i in range(100)])


@needs_root
def test_build_step_mounts_use_the_shared_options(tmp_path, monkeypatch):
    calls = []
    real = syscalls.mount

    def spy(source, target, fstype=None, flags=0, data=None):
        calls.append((fstype, data))
        return real(source, target, fstype, flags, data)

    monkeypatch.setattr(mounting.sc, "mount", spy)
    lower = tmp_path / "lower"
    lower.mkdir()
    (lower / "f").write_text("x")
    with mounting.writable([str(lower)], str(tmp_path / "scratch")) as (merged, upper):
        assert open(os.path.join(merged, "f")).read() == "x"
    overlay = [data for fstype, data in calls if fstype == "overlay"]
    assert overlay and all(data.endswith(DIFF_OPTIONS) for data in overlay)
