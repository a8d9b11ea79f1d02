"""``docker image prune`` through ``pybuild system service`` (issue 15): dangling images
no container uses go, a container's image stays, ``-a`` takes named unused ones too."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from service_helpers import service  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]


def _build_label(service, base: str, tag: str, tmp_path: Path) -> str:  # noqa: F811
    """A distinct image on ``base`` (a unique label); returns its ID."""
    ctx = tmp_path / tag.replace(":", "-")
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nLABEL unique={uuid.uuid4().hex}\n")
    service.docker("build", "-q", "-t", tag, str(ctx))
    return service.docker("inspect", "-f", "{{.Id}}", tag).stdout.decode().strip()


def _ids(service) -> set[str]:  # noqa: F811
    return set(service.docker("images", "-aq", "--no-trunc").stdout.decode().split())


def test_image_prune_dangling_then_all(service, pybuild, busybox_rootfs, tmp_path: Path):  # noqa: F811
    base = f"pybuild-svc-prune-{uuid.uuid4().hex[:10]}:base"
    pybuild("import", str(busybox_rootfs), base)
    base_id = service.docker("inspect", "-f", "{{.Id}}", base).stdout.decode().strip()
    used = _build_label(service, base, f"pybuild-svc-prune-{uuid.uuid4().hex[:10]}:used", tmp_path)
    name = f"pybuild-svc-prune-{uuid.uuid4().hex[:10]}"
    service.docker("create", "--name", name, "--network", "host", used, "true")
    service.docker("rmi", "-f", used)  # now <none>, kept for the container
    assert used in _ids(service)

    kept = service.docker("image", "prune", "-f").stdout.decode()
    assert used not in kept and _ids(service) >= {used, base_id}  # a container's image stays

    service.docker("rm", name)
    gone = service.docker("image", "prune", "-f").stdout.decode()
    assert f"deleted: {used}" in gone and "Total reclaimed space" in gone
    assert used not in _ids(service) and base_id in _ids(service)  # a named image stays without -a
    assert service.docker("run", "--rm", "--network", "host", base, "echo", "alive").stdout == b"alive\n"

    extra_tag = f"pybuild-svc-prune-{uuid.uuid4().hex[:10]}:extra"
    extra = _build_label(service, base, extra_tag, tmp_path)
    everything = service.docker("image", "prune", "-af").stdout.decode()
    assert f"untagged: {extra_tag}" in everything and f"deleted: {extra}" in everything
    assert f"untagged: {base}" in everything and f"deleted: {base_id}" in everything
    assert "Total reclaimed space: 0B" not in everything  # the layer's blob was freed
    assert _ids(service) == set()


def test_image_prune_raw_answer_and_bad_filter(service, pybuild, busybox_rootfs):  # noqa: F811
    """docker's body: ``ImagesDeleted`` (null when nothing went) and ``SpaceReclaimed``; a
    filter the service does not apply is refused, not ignored (it would prune too much)."""
    image = f"pybuild-svc-prune-{uuid.uuid4().hex[:10]}:1"
    pybuild("import", str(busybox_rootfs), image)
    sock = str(service.socket)

    def post(query: str) -> tuple[str, bytes]:
        out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", sock, "-X", "POST",
                              f"http://x/v1.41/images/prune{query}"], capture_output=True, check=True, timeout=60)
        body, _, code = out.stdout.rpartition(b"\n")
        return code.decode(), body

    code, body = post("")
    assert code == "200" and json.loads(body) == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    code, body = post("?filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D")
    assert code == "400" and b"label" in body
    assert service.docker("images", "-q", image).stdout.strip()  # nothing was pruned
