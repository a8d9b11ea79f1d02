"""``docker save`` and ``docker load`` through ``pybuild system service`` (issue 15): the
archive the service writes is one dockerd loads and runs, and the reverse."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from service_helpers import service  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]


def _run(service, image: str) -> bytes:  # noqa: F811
    return service.docker("run", "--rm", "--network", "host", image, "sh", "-c", "echo saved; ls /bin/sh").stdout


def test_save_from_service_loads_into_dockerd(service, pybuild, busybox_rootfs, tmp_path: Path):  # noqa: F811
    """``docker save -o`` against the service, ``docker load -i`` into dockerd: dockerd runs
    it with the same output as the service does."""
    image = f"pybuild-svc-save-{uuid.uuid4().hex[:10]}:1"
    pybuild("import", str(busybox_rootfs), image)
    archive = tmp_path / "saved.tar"
    service.docker("save", "-o", str(archive), image)
    try:
        loaded = subprocess.run(["docker", "load", "-i", str(archive)], capture_output=True, check=True, timeout=120)
        assert f"Loaded image: {image}".encode() in loaded.stdout
        theirs = subprocess.run(["docker", "run", "--rm", "--network", "host", image, "sh", "-c",
                                 "echo saved; ls /bin/sh"], capture_output=True, check=True, timeout=120)
        assert theirs.stdout == _run(service, image) == b"saved\n/bin/sh\n"
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def test_save_pipe_load_round_trip_and_from_dockerd(service, pybuild, busybox_rootfs, busybox_tar):  # noqa: F811
    """``docker save A B | docker load`` on the service brings both back after ``rmi``; an
    archive dockerd saved loads into the service and runs."""
    first, second = (f"pybuild-svc-rt-{uuid.uuid4().hex[:10]}:{n}" for n in (1, 2))
    pybuild("import", str(busybox_rootfs), first)
    service.docker("tag", first, second)
    saved = service.docker("save", first, second).stdout
    service.docker("rmi", first, second)
    assert service.docker("images", "-q", first).stdout == b""
    loaded = service.docker("load", input=saved).stdout.decode()
    assert f"Loaded image: {first}" in loaded and f"Loaded image: {second}" in loaded
    assert _run(service, second) == b"saved\n/bin/sh\n"

    theirs = f"pybuild-svc-fromdocker-{uuid.uuid4().hex[:10]}:1"
    subprocess.run(["docker", "import", str(busybox_tar), theirs], check=True, capture_output=True)
    try:
        archive = subprocess.run(["docker", "save", theirs], check=True, capture_output=True, timeout=120).stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", theirs], capture_output=True)
    quiet = service.docker("load", "-q", input=archive).stdout.decode()
    assert f"Loaded image: {theirs}" in quiet
    assert _run(service, theirs) == b"saved\n/bin/sh\n"


def test_save_unknown_and_load_garbage_fail(service, tmp_path: Path):  # noqa: F811
    """An unknown image is docker's error before any archive byte; a body that is no
    archive fails the load with a message, and nothing is left in the service's spool."""
    missing = service.docker("save", "-o", str(tmp_path / "out.tar"), "pybuild-svc-nosuch:1", check=False)
    assert missing.returncode == 1 and b"pybuild-svc-nosuch" in missing.stderr
    assert not (tmp_path / "out.tar").exists()
    garbage = service.docker("load", input=b"this is not a tar archive\n" * 100, check=False)
    assert garbage.returncode == 1 and garbage.stderr.strip()
    leftovers = [p for p in (service.root / "tmp").rglob("*")] if (service.root / "tmp").exists() else []
    assert not [p for p in leftovers if "load" in p.name], leftovers


def test_load_answer_is_docker_json_lines(service, pybuild, busybox_rootfs, tmp_path: Path):  # noqa: F811
    """The raw API: ``POST /images/load`` answers JSON lines with docker's ``stream`` key
    (what docker-py and compose parse), and ``GET /images/get`` needs a name."""
    image = f"pybuild-svc-json-{uuid.uuid4().hex[:10]}:1"
    pybuild("import", str(busybox_rootfs), image)
    archive = tmp_path / "a.tar"
    service.docker("save", "-o", str(archive), image)
    sock = str(service.socket)
    out = subprocess.run(["curl", "-sS", "--unix-socket", sock, "-X", "POST", "--data-binary", f"@{archive}",
                          "-H", "Content-Type: application/x-tar", "http://x/v1.41/images/load?quiet=1"],
                         capture_output=True, check=True, timeout=60).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert lines == [{"stream": f"Loaded image: {image}\n"}]
    one = subprocess.run(["curl", "-sSf", "--unix-socket", sock, f"http://x/v1.41/images/{image}/get"],
                         capture_output=True, check=True, timeout=60).stdout  # docker-py's get_image
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert [entry["RepoTags"] for entry in manifest] == [[image]]
    bad = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock,
                          "http://x/v1.41/images/get"], capture_output=True, check=True, timeout=60).stdout
    assert bad == b"400"
