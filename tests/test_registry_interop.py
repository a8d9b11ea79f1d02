"""Interop: pybuild-pushed images run by docker and podman; docker- and skopeo-pushed images run by pybuild."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CLI

pytestmark = [pytest.mark.registry, pytest.mark.slow]
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
PODMAN_RUN = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "--network", "none"]


def sh(*args: str, input: bytes | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, input=input, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout.decode()


@pytest.fixture
def cli(pybuild: CLI, tmp_path: Path) -> CLI:
    pybuild.env["DOCKER_CONFIG"] = str(tmp_path / "docker")
    return pybuild


def test_docker_pulls_and_runs_a_pybuild_push(docker, plain_registry, cli, busybox_image):
    ref = f"{plain_registry.host}/interop/pybuild-pushed:1"
    cli("push", busybox_image, ref)
    try:
        sh("docker", "pull", ref)
        assert sh("docker", "run", "--rm", "--network", "none", ref, "/bin/echo", "hello from docker").strip() \
            == "hello from docker"
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)


def test_podman_pulls_and_runs_a_pybuild_push(plain_registry, cli, busybox_image, tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    ref = f"{plain_registry.host}/interop/pybuild-pushed-podman:1"
    cli("push", busybox_image, ref)
    try:
        sh(*PODMAN, "pull", "--tls-verify=false", ref)
        out = sh(*PODMAN, "run", "--rm", *PODMAN_RUN, ref, "/bin/echo", "hello from podman")
        assert out.strip() == "hello from podman"
    finally:
        subprocess.run([*PODMAN, "rmi", "-f", ref], capture_output=True)


def test_pybuild_runs_a_docker_push(docker, plain_registry, cli, busybox_tar):
    ref = f"{plain_registry.host}/interop/docker-pushed:1"
    with open(busybox_tar, "rb") as tar:
        sh("docker", "import", "-", ref, input=tar.read())
    try:
        sh("docker", "push", ref)
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)
    cli("pull", ref)
    info = json.loads(cli("inspect", ref).stdout)[0]
    assert info["Descriptor"]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    out = cli("run", "--rm", ref, "/bin/echo", "hello from a docker push")
    assert out.stdout.decode().strip() == "hello from a docker push"
    assert b"store clean" in cli("fsck").stdout


def test_pybuild_runs_a_skopeo_oci_push(docker, plain_registry, cli, busybox_tar, tmp_path):
    ref = f"{plain_registry.host}/interop/skopeo-pushed:1"
    local = "pybuild-interop-skopeo:1"
    with open(busybox_tar, "rb") as tar:
        sh("docker", "import", "-", local, input=tar.read())
    archive = tmp_path / "saved.tar"
    try:
        sh("docker", "save", "-o", str(archive), local)
    finally:
        subprocess.run(["docker", "rmi", "-f", local], capture_output=True)
    sh("skopeo", "copy", "--format", "oci", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{ref}")
    cli("pull", ref)
    stored = json.loads(cli("inspect", ref).stdout)[0]
    assert stored["Descriptor"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    out = cli("run", "--rm", ref, "/bin/echo", "hello from a skopeo push")
    assert out.stdout.decode().strip() == "hello from a skopeo push"
