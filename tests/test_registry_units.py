"""Pure functions of the registry client: challenge parsing, Retry-After, registry names, config.json."""

from __future__ import annotations

import base64
import email.utils
import json

import pytest

from registry.remote.auth import parse_challenges
from registry.remote.credentials import Credentials, load
from registry.remote.login import normalize_registry
from registry.remote.transport import is_local, retry_after


def test_challenges_with_quoted_commas_and_escapes():
    header = ('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
              'scope="repository:a/b:pull,push" , Basic realm="say \\"hi\\", friend"')
    bearer, basic = parse_challenges(header)
    assert bearer.scheme == "bearer" and bearer.params == {
        "realm": "https://auth.example.com/token", "service": "registry.example.com",
        "scope": "repository:a/b:pull,push"}
    assert basic.scheme == "basic" and basic.params == {"realm": 'say "hi", friend'}
    assert parse_challenges("Basic") == [parse_challenges("basic")[0]]
    assert parse_challenges('Bearer error="insufficient_scope", realm=x')[0].params["error"] == "insufficient_scope"


def test_retry_after_seconds_and_dates():
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None
    now = 1_800_000_000.0
    assert retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0  # a date past: no wait


@pytest.mark.parametrize("text, host", [
    ("https://index.docker.io/v1/", "docker.io"), ("registry-1.docker.io", "docker.io"),
    ("https://registry.example.com:5000/v2/", "registry.example.com:5000"), ("127.0.0.1:5000", "127.0.0.1:5000")])
def test_normalize_registry(text, host):
    assert normalize_registry(text) == host


def test_loopback_hosts():
    assert is_local("localhost:5000") and is_local("127.0.0.2:80") and is_local("[::1]:5000")
    assert not is_local("registry.example.com") and not is_local("localhost.example.com:5000")


def test_config_json_forms(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    auth = base64.b64encode(b"hub-user:hub-pass").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": auth},
        "https://old.example.com/v1/": {"username": "u", "password": "p"},
        "token.example.com": {"auth": base64.b64encode(b"t:").decode(), "identitytoken": "refresh-123"},
    }}))
    assert load("docker.io") == Credentials("hub-user", "hub-pass")
    assert load("old.example.com") == Credentials("u", "p")
    assert load("token.example.com") == Credentials("t", identity_token="refresh-123")
    assert load("none.example.com") is None
    assert "hub-pass" not in repr(load("docker.io")) and "refresh-123" not in repr(load("token.example.com"))
