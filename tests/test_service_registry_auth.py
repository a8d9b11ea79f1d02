"""Registry credentials a docker client gives the service (issue 15): ``docker login``
against the service (``POST /auth``) checks them and stores nothing; push and pull send
them as ``X-Registry-Auth`` and they serve that request only.  The service user has no
credentials for the registry, so a pull without them fails."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from registry_fixtures import PASSWORD, USER
from service_helpers import Service, service  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]


@pytest.fixture(scope="module")
def basic_registry(registry_factory):
    return registry_factory("basic")


def _secrets() -> list[bytes]:
    """The password in every form it could leak: plain, base64 of user:pass, the header."""
    header = base64.urlsafe_b64encode(json.dumps({"username": USER, "password": PASSWORD}).encode())
    return [PASSWORD.encode(), base64.b64encode(f"{USER}:{PASSWORD}".encode()), header.rstrip(b"=")]


@pytest.fixture(params=["basic", "tls"])
def auth_registry(request, basic_registry):
    """htpasswd over plain HTTP, and over TLS with the service trusting the test CA."""
    return basic_registry if request.param == "basic" else request.getfixturevalue("tls_registry")


@pytest.fixture
def auth_service(root: Path, pybuild, auth_registry, monkeypatch):
    """The service, started with the registry's environment (its CA for TLS)."""
    for key, value in auth_registry.env.items():
        monkeypatch.setenv(key, value)
    svc = Service(root, root / "api.sock")
    svc.start()
    yield svc
    svc.kill()


def test_login_push_pull_with_client_credentials(auth_service, busybox_image, auth_registry, tmp_path: Path,
                                                 monkeypatch):
    service, registry = auth_service, auth_registry
    client_config = tmp_path / "client-docker-config"
    client_config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(client_config))  # the client's only; the service started before
    remote = f"{registry.host}/svc/auth-{uuid.uuid4().hex[:10]}:1"
    service.docker("tag", busybox_image, remote)

    denied = service.docker("push", remote, check=False)  # no credentials anywhere: the registry refuses
    assert denied.returncode != 0

    wrong = service.docker("login", "-u", USER, "--password-stdin", registry.host,
                           input=b"wrong-password\n", check=False)
    assert wrong.returncode != 0 and b"Login Succeeded" not in wrong.stdout
    ok = service.docker("login", "-u", USER, "--password-stdin", registry.host, input=PASSWORD.encode() + b"\n")
    assert b"Login Succeeded" in ok.stdout

    pushed = service.docker("push", remote)
    assert b"digest: sha256:" in pushed.stdout
    service.docker("rmi", remote)
    service.docker("pull", remote)
    assert service.docker("run", "--rm", "--network", "host", remote, "echo", "pulled").stdout == b"pulled\n"

    service.docker("rmi", remote)
    service.docker("logout", registry.host)
    anonymous = service.docker("pull", remote, check=False)  # the last request's credentials are gone
    assert anonymous.returncode != 0
    assert service.docker("images", "-q", remote).stdout == b""

    service.kill()
    stderr = service.proc.stderr.read() if service.proc and service.proc.stderr else b""
    outputs = b"".join([denied.stdout, denied.stderr, wrong.stdout, wrong.stderr, ok.stderr, pushed.stdout,
                        pushed.stderr, anonymous.stdout, anonymous.stderr, stderr])
    for secret in _secrets():
        assert secret not in outputs
        for path in service.root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert secret not in path.read_bytes(), f"{path} holds the registry password"


def test_bad_registry_auth_header_is_refused(service, busybox_image, basic_registry):  # noqa: F811
    """A header that is not base64url JSON is a 400 before anything is sent to a registry."""
    sock = str(service.socket)
    remote = f"{basic_registry.host}/svc/bad-{uuid.uuid4().hex[:10]}"
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", sock, "-X", "POST",
                          "-H", "X-Registry-Auth: !!!not-base64!!!",
                          f"http://x/v1.41/images/create?fromImage={remote}&tag=1"],
                         capture_output=True, check=True, timeout=60).stdout
    body, _, code = out.rpartition(b"\n")
    assert code == b"400" and b"X-Registry-Auth" in body


def test_given_credentials_stay_in_their_request(tmp_path: Path, monkeypatch):
    """The service's handler threads run side by side: credentials given in one request's
    context are not seen by another thread (another client), nor after the block."""
    import threading

    from registry.remote.credentials import Credentials
    from registry.remote.session import Session, given_credentials

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no stored credentials
    host = "127.0.0.1:9"
    with given_credentials(host, Credentials(username="client", password="given")):
        inner = Session.shared(host)
        assert inner.auth.credentials == Credentials(username="client", password="given")
        assert Session.shared(host) is inner
        seen: list[Session] = []
        other = threading.Thread(target=lambda: seen.append(Session.shared(host)))
        other.start()
        other.join()
        assert seen[0] is not inner and seen[0].auth.credentials is None
    assert Session.shared(host) is not inner and Session.shared(host).auth.credentials is None
