"""Real registries for the registry-client tests.

``docker-registry`` (CNCF distribution) processes on 127.0.0.1 with free ports in
four set-ups: plain HTTP; plain HTTP with htpasswd basic auth (``basic``, for tests
that put a proxy in front); TLS (a CA and server certificate made here with
``cryptography``, trusted through a certs.d-style dir named by ``PYBUILD_CERTS_D``)
with htpasswd basic auth; and bearer-token auth with :class:`TokenServer`, a small
token server signing JWTs with a key whose certificate the registry trusts.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

REGISTRY_BIN = "/usr/bin/docker-registry"
USER, PASSWORD = "ci-bot", "s3cret-Pa55word-xyzzy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# ---- certificates -----------------------------------------------------------------

@dataclass
class KeyPair:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        return cert_path, key_path


def _cert(subject: str, key, issuer: KeyPair | None, *, ca: bool, sans: list | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer.key if issuer else key, hashes.SHA256())


def make_ca() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(key, _cert("pybuild test CA", key, None, ca=True))


def make_server_cert(ca: KeyPair) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    return KeyPair(key, _cert("127.0.0.1", key, ca, ca=False, sans=sans))


# ---- the token server -------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Docker's token protocol: GET with basic auth (or anonymous), POST for refresh tokens.

    Authenticated users get every action they ask for; anonymous callers get
    ``pull`` on repositories under ``public/``.  Tokens are RS256 JWTs with the
    signing certificate in ``x5c``, valid for ``lifetime`` seconds (the ``expires_in``
    a test controls); the next ``bad_tokens`` tokens issued are garbage the registry
    rejects.  ``requests`` records every token request.
    """

    def __init__(self, issuer: str = "pybuild-test-issuer", service: str = "pybuild-test-registry",
                 lifetime: int = 300):
        self.issuer, self.service, self.lifetime = issuer, service, lifetime
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signer = KeyPair(key, _cert("token signer", key, None, ca=True))
        self.users = {USER: PASSWORD}
        self.refresh_tokens: dict[str, str] = {}
        self.requests: list[dict] = []
        self.bad_tokens = 0
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def start(self) -> "TokenServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sign(self, subject: str, access: list[dict]) -> str:
        der = self.signer.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.lifetime,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.signer.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def grant(self, user: str | None, scopes: list[str]) -> list[dict]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            allowed = wanted if user else [a for a in wanted if a == "pull" and name.startswith("public/")]
            if kind == "repository" and allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
        return access

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _issue(self, user: str | None, scopes: list[str], offline: bool) -> None:
                server.requests.append({"user": user, "scopes": scopes, "method": self.command})
                token = server.sign(user or "", server.grant(user, scopes))
                if server.bad_tokens > 0:
                    server.bad_tokens -= 1
                    token = "not-a-valid-token"
                body = {"token": token, "expires_in": server.lifetime,
                        "issued_at": dt.datetime.now(dt.timezone.utc).isoformat()}
                body["access_token"] = body["token"]
                if offline and user:
                    refresh = secrets.token_urlsafe(24)
                    server.refresh_tokens[refresh] = user
                    body["refresh_token"] = refresh
                self._answer(200, body)

            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        return self._answer(401, {"details": "incorrect username or password"})
                    user = name
                self._issue(user, query.get("scope", []), query.get("offline_token", ["false"])[0] == "true")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                grant = form.get("grant_type", [""])[0]
                if grant == "refresh_token":
                    user = server.refresh_tokens.get(form.get("refresh_token", [""])[0])
                elif grant == "password":
                    name = form.get("username", [""])[0]
                    user = name if server.users.get(name) == form.get("password", [""])[0] else None
                else:
                    user = None
                if user is None:
                    return self._answer(401, {"details": "invalid grant"})
                scopes = " ".join(form.get("scope", [])).split()
                self._issue(user, scopes, grant == "password")

        return Handler


# ---- the registry process ---------------------------------------------------------

@dataclass
class Registry:
    """A running docker-registry: ``host`` (127.0.0.1:PORT), how to reach it, its log."""

    kind: str
    host: str
    workdir: Path
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    credentials: tuple[str, str] | None = None
    token_server: TokenServer | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.kind == "tls" else "http"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request the registry logged (access log)."""
        out = []
        for line in self.log().splitlines():
            match = re.search(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP', line)
            if match:
                out.append((match.group(1), match.group(2)))
        return out

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(workdir: Path, kind: str = "plain") -> Registry:
    """Start ``docker-registry`` in ``workdir``: ``plain``, ``basic`` (htpasswd), ``tls`` (+ htpasswd) or ``token``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    host = f"127.0.0.1:{port}"
    config: dict = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}, "formatter": "text"},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": host, "secret": secrets.token_hex(16)},
    }
    env: dict[str, str] = {}
    credentials = None
    token_server = None
    if kind in ("tls", "basic"):
        htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, check=True, text=True)
        (workdir / "htpasswd").write_text(htpasswd.stdout.strip() + "\n")
        config["auth"] = {"htpasswd": {"realm": "pybuild-test", "path": str(workdir / "htpasswd")}}
        credentials = (USER, PASSWORD)
    if kind == "tls":
        ca = make_ca()
        server_cert, server_key = make_server_cert(ca).write(workdir, "server")
        certs_d = workdir / "certs.d"
        (certs_d / host).mkdir(parents=True)
        ca.write(certs_d / host, "ca")
        (certs_d / host / "ca.key").unlink()
        config["http"]["tls"] = {"certificate": str(server_cert), "key": str(server_key)}
        env["PYBUILD_CERTS_D"] = str(certs_d)
    elif kind == "token":
        token_server = TokenServer().start()
        bundle = workdir / "token-signer.crt"
        bundle.write_bytes(token_server.signer.cert.public_bytes(serialization.Encoding.PEM))
        config["auth"] = {"token": {"realm": token_server.realm, "service": token_server.service,
                                    "issuer": token_server.issuer, "rootcertbundle": str(bundle)}}
        credentials = (USER, PASSWORD)
    elif kind not in ("plain", "basic"):
        raise ValueError(kind)
    (workdir / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log_path = workdir / "registry.log"
    log = open(log_path, "wb")
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(workdir / "config.yml")], stdout=log,
                               stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_port(port)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"docker-registry did not start:\n{log_path.read_text()}") from None
    return Registry(kind, host, workdir, process, log_path, env, credentials, token_server)


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory):
    """Start registries of a kind on demand; all are stopped at the end of the session."""
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    started: list[Registry] = []

    def start(kind: str = "plain") -> Registry:
        reg = start_registry(tmp_path_factory.mktemp(f"registry-{kind}"), kind)
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()
        if reg.token_server:
            reg.token_server.stop()


@pytest.fixture(scope="session")
def plain_registry(registry_factory) -> Registry:
    return registry_factory("plain")


@pytest.fixture(scope="session")
def tls_registry(registry_factory) -> Registry:
    return registry_factory("tls")


@pytest.fixture(scope="session")
def token_registry(registry_factory) -> Registry:
    return registry_factory("token")


@pytest.fixture(params=["plain", "tls", "token"])
def any_registry(request) -> Registry:
    """Each of the three set-ups in turn."""
    return request.getfixturevalue(f"{request.param}_registry")


def http_get(url: str, **headers: str) -> tuple[int, bytes]:
    """A tiny urllib GET for tests that check a registry directly."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
