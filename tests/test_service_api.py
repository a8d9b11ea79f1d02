"""The Engine API service itself (issue 15): socket, versions, error bodies, a CLI and an
API client sharing one state, and a ``kill -9`` of the service that loses nothing."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import stat
import subprocess

import docker
import pytest

from conftest import PYBUILD
from service_helpers import Service, service  # noqa: F401


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(svc: Service, method: str, path: str, body: dict | None = None) -> tuple[int, dict, bytes]:
    conn = _UnixConnection(str(svc.socket))
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def test_socket_mode_ping_and_version_prefix(service):  # noqa: F811
    assert stat.S_IMODE(os.stat(service.socket).st_mode) == 0o660
    status, headers, body = call(service, "GET", "/_ping")
    assert (status, body, headers["Api-Version"]) == (200, b"OK", "1.41")
    status, _, body = call(service, "HEAD", "/_ping")
    assert (status, body) == (200, b"")
    for prefix in ("", "/v1.24", "/v1.41"):
        status, _, body = call(service, "GET", prefix + "/version")
        assert status == 200 and json.loads(body)["ApiVersion"] == "1.41"
    status, _, body = call(service, "GET", "/v1.99/version")
    assert status == 400 and "1.41" in json.loads(body)["message"]


def test_errors_are_docker_status_codes_with_a_message(service, busybox_image):  # noqa: F811
    status, _, body = call(service, "GET", "/containers/nosuch/json")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuch"})
    status, _, body = call(service, "POST", "/containers/create", {"Image": "nosuch-image:1"})
    assert status == 404 and "nosuch-image" in json.loads(body)["message"]
    status, _, body = call(service, "POST", "/containers/create?name=twice",
                           {"Image": busybox_image, "Cmd": ["true"], "HostConfig": {"NetworkMode": "host"}})
    assert status == 200
    status, _, body = call(service, "POST", "/containers/create?name=twice",
                           {"Image": busybox_image, "Cmd": ["true"], "HostConfig": {"NetworkMode": "host"}})
    assert status == 409 and "already in use" in json.loads(body)["message"]
    status, _, body = call(service, "GET", "/no/such/endpoint")
    assert status == 404 and "message" in json.loads(body)


def test_cli_and_api_share_one_state(service, pybuild, busybox_image):  # noqa: F811
    cid = pybuild("run", "-d", "--name", "from-cli", busybox_image, "sleep", "300").stdout.decode().strip()
    assert service.docker("ps", "--format", "{{.ID}} {{.Names}}").stdout.decode().split() == [cid[:12], "from-cli"]
    service.docker("run", "-d", "--name", "from-api", "--network", "host", busybox_image, "sleep", "300")
    assert "from-api" in pybuild("ps").stdout.decode()
    pybuild("rm", "-f", "from-api")
    service.docker("rm", "-f", "from-cli")
    assert pybuild("ps", "-aq").stdout.decode() == ""


def test_killed_service_loses_no_container(service, root, busybox_image):  # noqa: F811
    client = docker.DockerClient(base_url=service.url, version="1.41")
    running = client.containers.run(busybox_image, ["sh", "-c", "echo up; exec sleep 300"], detach=True,
                                    network_mode="host", name="keeps-running")
    exited = client.containers.run(busybox_image, ["sh", "-c", "exit 3"], detach=True, network_mode="host",
                                   name="exited-before")
    assert exited.wait(timeout=60)["StatusCode"] == 3
    autoremove = client.containers.run(busybox_image, ["sleep", "300"], detach=True, network_mode="host",
                                       auto_remove=True, name="removed-later")
    before = sorted((c["Names"][0], c["State"]) for c in client.api.containers(all=True))

    service.kill(signal.SIGKILL)
    service.start()  # a new process on the same socket path and root
    after = sorted((c["Names"][0], c["State"]) for c in client.api.containers(all=True))
    assert after == before == [("/exited-before", "exited"), ("/keeps-running", "running"),
                               ("/removed-later", "running")]
    assert client.containers.get(running.id).logs() == b"up\n"
    # the AutoRemove the killed service owed is done by its successor
    client.containers.get(autoremove.id).stop(timeout=1)
    assert client.api.wait(autoremove.id, condition="removed")["StatusCode"] == 137
    assert sorted(c.name for c in client.containers.list(all=True)) == ["exited-before", "keeps-running"]


def test_tcp_only_on_loopback(root):
    proc = subprocess.run([PYBUILD, "system", "service", "--socket", "tcp://0.0.0.0:2375", "--timeout", "1"],
                          env={**os.environ, "PYBUILD_ROOT": str(root)}, capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.decode().count("\n") == 1 and "127.0.0.1" in proc.stderr.decode()


@pytest.mark.parametrize("idle", ["1"])
def test_tcp_loopback_and_idle_timeout(root, idle):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([PYBUILD, "system", "service", "--socket", f"tcp://127.0.0.1:{port}", "--timeout", idle],
                            env={**os.environ, "PYBUILD_ROOT": str(root)}, stderr=subprocess.PIPE)
    assert "serving" in proc.stderr.readline().decode()  # type: ignore[union-attr]
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}", version="1.41")
    assert client.ping()
    assert proc.wait(timeout=60) == 0  # no request for `idle` seconds: it exits by itself


def test_events_create_start_die_destroy(service, busybox_image):  # noqa: F811
    client = docker.DockerClient(base_url=service.url, version="1.41")
    stream = client.events(decode=True, filters={"type": "container", "label": "events=test"})  # subscribed now
    client.containers.run(busybox_image, ["sh", "-c", "exit 9"], network_mode="host", auto_remove=True,
                          detach=True, labels={"events": "test"}, name="eventful")
    seen = []
    for event in stream:
        seen.append((event["Action"], event["Actor"]["Attributes"]["name"], event["Actor"]["Attributes"].get("exitCode")))
        if event["Action"] == "destroy":
            break
    stream.close()
    assert seen == [("create", "eventful", None), ("start", "eventful", None), ("die", "eventful", "9"),
                    ("destroy", "eventful", None)]


def _health(client, name: str, leaving: str) -> dict:
    """``State.Health`` once its status is no longer ``leaving`` (the checks run every 50 ms)."""
    for _ in range(2000):
        current = client.api.inspect_container(name)["State"]["Health"]
        if current["Status"] != leaving:
            return current
    raise AssertionError(f"health of {name} stayed {leaving}")


def test_healthcheck_state_in_inspect_and_ps(service, busybox_image):  # noqa: F811
    client = docker.DockerClient(base_url=service.url, version="1.41")
    client.containers.run(busybox_image, ["sleep", "300"], detach=True, network_mode="host", name="checked",
                          healthcheck={"test": ["CMD-SHELL", "cat /tmp/ready"], "interval": 50_000_000,
                                       "timeout": 5_000_000_000, "retries": 2})
    assert client.api.inspect_container("checked")["State"]["Health"]["Status"] == "starting"
    failing = _health(client, "checked", "starting")
    assert failing["Status"] == "unhealthy" and failing["FailingStreak"] >= 2
    assert "No such file" in failing["Log"][-1]["Output"] and failing["Log"][-1]["ExitCode"] == 1
    assert "(unhealthy)" in service.docker("ps", "--format", "{{.Status}}").stdout.decode()
    service.docker("exec", "checked", "sh", "-c", "echo yes > /tmp/ready")
    passing = _health(client, "checked", "unhealthy")
    assert passing["Status"] == "healthy" and passing["Log"][-1]["Output"] == "yes\n"
    assert service.docker("ps", "-q", "--filter", "health=healthy").stdout.decode().strip() != ""
    client.containers.get("checked").remove(force=True)


def test_tls_client_certificates(root, tmp_path):
    """``--tlsverify`` as dockerd: a client with a certificate from the CA gets in, one
    without (or with another CA's) does not."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from registry_fixtures import KeyPair, _cert, make_ca, make_server_cert

    ca, stranger = make_ca(), make_ca()
    ca_path, _ = ca.write(tmp_path, "ca")
    server_cert, server_key = make_server_cert(ca).write(tmp_path, "server")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_cert, client_key = KeyPair(key, _cert("client", key, ca, ca=False)).write(tmp_path, "client")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_cert, other_key_path = KeyPair(other_key, _cert("client", other_key, stranger, ca=False)).write(
        tmp_path, "other")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([PYBUILD, "system", "service", "--socket", f"tcp://127.0.0.1:{port}", "--tlsverify",
                             "--tlscacert", str(ca_path), "--tlscert", str(server_cert), "--tlskey", str(server_key)],
                            env={**os.environ, "PYBUILD_ROOT": str(root)}, stderr=subprocess.PIPE)
    try:
        assert "serving" in proc.stderr.readline().decode()  # type: ignore[union-attr]
        base = ["docker", "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(ca_path)]
        ok = subprocess.run([*base, "--tlscert", str(client_cert), "--tlskey", str(client_key), "version",
                             "--format", "{{.Server.APIVersion}}"], capture_output=True, timeout=60)
        assert (ok.returncode, ok.stdout) == (0, b"1.41\n"), ok.stderr
        refused = subprocess.run([*base, "--tlscert", str(other_cert), "--tlskey", str(other_key_path), "ps"],
                                 capture_output=True, timeout=60)
        assert refused.returncode != 0
        plain = subprocess.run(["docker", "-H", f"tcp://127.0.0.1:{port}", "ps"], capture_output=True, timeout=60,
                               env={**os.environ, "DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": ""})
        assert plain.returncode != 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
