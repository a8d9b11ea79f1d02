"""docker-py (the ``docker`` package) against ``pybuild system service`` (issue 15): the
Python SDK builds, runs, waits, reads logs and removes through the Engine API."""

from __future__ import annotations

import io
import tarfile
import uuid

import docker
import pytest

from service_helpers import service  # noqa: F401


def _context(base: str) -> io.BytesIO:
    """A build context tar: a Dockerfile and one file, as docker-py sends a fileobj."""
    files = {"Dockerfile": f"FROM {base}\nCOPY greeting /greeting\nCMD [\"sh\", \"-c\", \"cat /greeting; "
                           f"echo oops >&2; exit 7\"]\n", "greeting": "hello from docker-py\n"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_build_run_wait_logs_remove(service, pybuild, busybox_image):  # noqa: F811
    client = docker.DockerClient(base_url=service.url, version="auto")
    assert client.version()["ApiVersion"] == "1.41"
    tag = f"pybuild-dockerpy-{uuid.uuid4().hex[:10]}:1"
    image, log = client.images.build(fileobj=_context(busybox_image), custom_context=True, tag=tag, rm=True)
    assert tag in image.tags
    assert any("Successfully built" in entry.get("stream", "") for entry in log)

    container = client.containers.run(tag, detach=True, network_mode="host", labels={"from": "docker-py"})
    assert client.containers.get(container.id).labels["from"] == "docker-py"
    assert container.wait(timeout=60)["StatusCode"] == 7
    assert container.logs(stdout=True, stderr=False) == b"hello from docker-py\n"
    assert container.logs(stdout=False, stderr=True) == b"oops\n"
    container.reload()
    assert container.status == "exited"
    assert [c.id for c in client.containers.list(all=True, filters={"label": "from=docker-py"})] == [container.id]
    # the CLI sees what the SDK made: one state, one store
    assert container.short_id in pybuild("ps", "-a").stdout.decode()
    container.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)

    client.images.remove(tag)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(tag)


@pytest.mark.xfail(strict=False, reason="known defect, seen once in three fresh-clone runs under heavy load: "
                   "the attached run answered exit 255 with no output; to be found and fixed, then unmarked")
def test_attached_run_returns_output_and_exit_code(service, pybuild, busybox_image):  # noqa: F811
    """run() without detach: output returned, a failing command raised with its exit code."""
    client = docker.DockerClient(base_url=service.url, version="auto")
    tag = f"pybuild-dockerpy-{uuid.uuid4().hex[:10]}:1"
    client.images.build(fileobj=_context(busybox_image), custom_context=True, tag=tag, rm=True)
    assert client.containers.run(tag, ["echo", "direct"], remove=True, network_mode="host") == b"direct\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run(tag, remove=True, network_mode="host")
    assert failed.value.exit_status == 7
    client.images.remove(tag)
