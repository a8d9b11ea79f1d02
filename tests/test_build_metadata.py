"""The config editor that metadata instructions go through (build and ``import --change``).

Many metadata lines must cost linear time: the editor grows ``Labels``, ``ExposedPorts``,
``Volumes`` and ``OnBuild`` in place instead of copying them per instruction (a copy per
LABEL made 100,000 LABEL lines take minutes).  Checked by structure, not by timing.
"""

from __future__ import annotations

import json

import pytest

from builder.build.metadata import ConfigEditor
from builder.dockerfile import parse, parse_instruction


def _apply(editor: ConfigEditor, line: str) -> str:
    doc = parse(line)
    return editor.apply(parse_instruction(doc.nodes[0], doc.path))


@pytest.mark.parametrize("key, first, second, expected", [
    ("Labels", "LABEL a=1", "LABEL b=2 a=3", {"a": "3", "b": "2"}),
    ("ExposedPorts", "EXPOSE 80", "EXPOSE 443/udp 80", {"80/tcp": {}, "443/udp": {}}),
    ("Volumes", "VOLUME /a", "VOLUME /b /a", {"/a": {}, "/b": {}}),
    ("OnBuild", "ONBUILD RUN a", "ONBUILD RUN b", ["RUN a", "RUN b"]),
])
def test_metadata_grows_in_place(key, first, second, expected):
    """The second instruction adds to the object the first made: no copy of what is there."""
    editor = ConfigEditor({"config": {key: None}})
    _apply(editor, first)
    grown = editor.run_config[key]
    _apply(editor, second)
    assert editor.run_config[key] is grown
    assert grown == expected


def test_a_base_images_labels_are_kept_and_extended():
    config = {"config": {"Labels": {"base": "1"}}}
    editor = ConfigEditor(config)
    assert _apply(editor, "LABEL app=x") == "LABEL app=x"
    assert config["config"]["Labels"] == {"base": "1", "app": "x"}


@pytest.mark.slow
def test_100k_label_lines_build(pybuild, busybox_image, tmp_path):
    """100,000 LABEL lines build (no timing asserted: the linear cost is shown above)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    count = 100_000
    (ctx / "Dockerfile").write_text("FROM busybox\n" + "".join(f"LABEL k{i}=v{i}\n" for i in range(count)))
    pybuild("build", "-q", "-t", "labels:1", str(ctx))
    labels = json.loads(pybuild("inspect", "labels:1").stdout)[0]["Config"]["Labels"]
    assert len(labels) == count and labels["k0"] == "v0" and labels[f"k{count - 1}"] == f"v{count - 1}"
