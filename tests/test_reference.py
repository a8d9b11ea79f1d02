"""Image reference parsing follows docker's normalisation and rejects what docker rejects."""

import pytest

from registry.errors import InvalidReference
from registry.reference import parse

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/team/app:v1.2", "localhost:5000/team/app:v1.2", "localhost:5000/team/app:v1.2"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest"),
    ("quay.io/org/app_x-y.z:tag_1", "quay.io/org/app_x-y.z:tag_1", "quay.io/org/app_x-y.z:tag_1"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"host:1/a:t@{DIGEST}", f"host:1/a:t@{DIGEST}", f"host:1/a:t@{DIGEST}"),
])
def test_normalisation(text, full, familiar):
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize("text, words", [
    ("BusyBox", "lower-case"),
    ("Library/app", "lower-case"),
    ("app:", "invalid tag"),
    ("app:-x", "invalid tag"),
    ("app@sha256:abc", "digest"),
    ("a//b", "not valid"),
    ("", "empty"),
    (" app", "spaces"),
    ("app:" + "x" * 200, "invalid tag"),
    ("bad_host:5000/app", "invalid registry host"),
    # docker's grammar is ASCII only (Go's \w): each of these parsed before
    ("busybox:tést", "outside ASCII"),
    ("x:a\u0663", "outside ASCII"),
    ("b\u00fc/x", "outside ASCII"),
])
def test_invalid(text, words):
    with pytest.raises(InvalidReference) as err:
        parse(text)
    assert words in str(err.value)
    assert str(err.value).startswith("invalid reference format")  # docker's words


def test_uppercase_registry_host_is_allowed():
    assert parse("Registry.Example.com/app").registry == "Registry.Example.com"
