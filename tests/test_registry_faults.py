"""Transfers through tests/faultproxy.py: dropped connections, 5xx/429, truncated and corrupted bodies.

Each transfer either completes after retries (and the store stays clean) or fails
with one clear line; a corrupt blob never enters the store.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import CLI
from faultproxy import DripServer, FaultProxy, SilentServer, unaccepting_port
from registry_fixtures import PASSWORD, USER

pytestmark = pytest.mark.registry
LAYER_BYTES = 6 << 20
BLOB = r"/blobs/sha256:"
UPLOAD = r"/blobs/uploads/"


@pytest.fixture
def proxy(plain_registry):
    fp = FaultProxy(plain_registry.host)
    yield fp
    fp.close()


@pytest.fixture
def big_image(pybuild: CLI, busybox_rootfs: Path, tmp_path: Path) -> str:
    """busybox plus a file of random bytes (the layer is about 6 MiB compressed)."""
    rootfs = tmp_path / "big-rootfs"
    os.system(f"cp -a {busybox_rootfs} {rootfs}")
    (rootfs / "random.bin").write_bytes(os.urandom(LAYER_BYTES))
    pybuild("import", str(rootfs), "big:latest")
    return "big:latest"


@pytest.fixture
def cli(pybuild: CLI, tmp_path: Path) -> CLI:
    pybuild.env.update({"DOCKER_CONFIG": str(tmp_path / "docker"), "PYBUILD_REGISTRY_BACKOFF": "0.05"})
    return pybuild


def fresh(cli: CLI, tmp_path: Path) -> CLI:
    other = CLI(tmp_path / "fresh")
    other.env.update({k: v for k, v in cli.env.items() if k != "PYBUILD_ROOT"})
    return other


def layer_digest(cli: CLI, image: str) -> str:
    from registry.store import Store

    layers = Store(cli.root).image(image).layers
    return max(layers, key=lambda d: d.size).digest


def pushed(cli: CLI, proxy: FaultProxy, image: str, repo: str) -> str:
    ref = f"{proxy.host}/{repo}:1"
    cli("push", image, ref)
    proxy.clear()
    return ref


def assert_clean(cli: CLI) -> None:
    out = cli("fsck")
    assert b"store clean" in out.stdout, out.stdout


@pytest.mark.parametrize("action", ["drop", "truncate"])
def test_pull_resumes_an_interrupted_blob_with_range(cli, proxy, big_image, tmp_path, action):
    ref = pushed(cli, proxy, big_image, f"resume-{action}")
    proxy.add("GET", BLOB + layer_digest(cli, big_image)[7:], action, at=LAYER_BYTES // 2)
    other = fresh(cli, tmp_path)
    other("pull", ref)
    gets = [e for e in proxy.log if e.method == "GET" and BLOB in e.path]
    assert any(e.fault == action for e in gets)
    assert any(e.range == f"bytes={LAYER_BYTES // 2}-" for e in gets), [(e.path, e.range) for e in gets]
    assert_clean(other)


def test_corrupted_byte_is_refused_then_fetched_again(cli, proxy, big_image, tmp_path):
    ref = pushed(cli, proxy, big_image, "corrupt-once")
    digest = layer_digest(cli, big_image)
    proxy.add("GET", BLOB + digest[7:], "corrupt", at=1000)
    other = fresh(cli, tmp_path)
    other("pull", ref)
    assert len([e for e in proxy.log if e.method == "GET" and digest[7:] in e.path]) == 2
    assert_clean(other)


def test_persistent_corruption_fails_clearly_and_stores_nothing(cli, proxy, big_image, tmp_path):
    ref = pushed(cli, proxy, big_image, "corrupt-always")
    digest = layer_digest(cli, big_image)
    proxy.add("GET", BLOB + digest[7:], "corrupt", times=100, at=12345)
    other = fresh(cli, tmp_path)
    out = other("pull", ref, check=False)
    message = out.stderr.decode().strip().splitlines()[-1]
    assert out.returncode == 1 and message.startswith("pybuild: error:") and digest in message, message
    assert not (other.root / "store" / "blobs" / "sha256" / digest[7:]).exists()
    assert_clean(other)
    assert b"big" not in other("images").stdout


def test_server_errors_are_retried(cli, proxy, big_image, tmp_path):
    ref = pushed(cli, proxy, big_image, "five-hundred")
    proxy.add("GET", r"/manifests/", "status", times=2, status=500)
    proxy.add("GET", BLOB, "status", times=2, status=503)
    other = fresh(cli, tmp_path)
    other("pull", ref)
    assert len(proxy.faults()) == 4
    assert_clean(other)


def test_persistent_server_error_is_a_clear_failure(cli, proxy, big_image, tmp_path):
    ref = pushed(cli, proxy, big_image, "always-500")
    proxy.add("GET", r"/manifests/", "status", times=1000, status=500)
    out = fresh(cli, tmp_path)("pull", ref, check=False)
    message = out.stderr.decode().strip()
    assert out.returncode == 1 and message.count("\n") == 0 and "500" in message, message


def test_429_honours_retry_after(cli, proxy, big_image, tmp_path):
    ref = pushed(cli, proxy, big_image, "too-many")
    proxy.add("GET", r"/manifests/", "status", times=1, status=429, headers={"Retry-After": "1"})
    out = fresh(cli, tmp_path)("--debug", "pull", ref)
    # The wait chosen is Retry-After's 1 s, not the 0.05 s backoff this fixture sets.
    assert b"/manifests/1 -> 429\n" in out.stderr and b"/manifests/1: 429; retrying in 1.00s\n" in out.stderr
    assert [e.fault for e in proxy.faults()] == ["status"]


def test_403_is_a_clear_one_liner(cli, proxy, big_image, tmp_path):
    ref = pushed(cli, proxy, big_image, "forbidden")
    proxy.add("GET", r"/manifests/", "status", times=10, status=403)
    out = fresh(cli, tmp_path)("pull", ref, check=False)
    message = out.stderr.decode().strip()
    assert out.returncode == 1 and message.count("\n") == 0 and "403" in message and proxy.host in message


def test_push_survives_dropped_upload_and_server_errors(cli, proxy, big_image, tmp_path):
    ref = f"{proxy.host}/push-faults:1"
    proxy.add("PUT", UPLOAD, "drop_request", times=1, at=LAYER_BYTES // 3)
    proxy.add("POST", UPLOAD, "status", times=1, status=502)
    proxy.add("PUT", r"/manifests/", "status", times=1, status=500)
    cli("push", big_image, ref)
    assert {e.fault for e in proxy.faults()} == {"drop_request", "status"}
    other = fresh(cli, tmp_path)
    other("pull", ref)
    assert_clean(other)


def test_push_chunked_survives_a_failed_patch(cli, proxy, big_image, tmp_path):
    ref = f"{proxy.host}/push-chunk-faults:1"
    proxy.add("PATCH", UPLOAD, "status", times=1, status=500)
    cli("push", "--chunk-size", "1m", big_image, ref)
    assert [e.fault for e in proxy.faults()] == ["status"]
    other = fresh(cli, tmp_path)
    other("pull", ref)
    assert_clean(other)


def test_relative_upload_locations_are_followed(cli, proxy, big_image, tmp_path):
    proxy.relative_locations = True
    ref = f"{proxy.host}/relative-location:1"
    cli("push", big_image, ref)
    shutil.rmtree(cli.root / "distribution")  # forget where the blobs are, so they are uploaded, not mounted
    cli("push", "--chunk-size", "2m", big_image, f"{proxy.host}/relative-location-chunked:1")
    patches = [e for e in proxy.log if e.method == "PATCH"]
    assert len(patches) >= 3 and all(e.path.startswith("/v2/relative-location-chunked/") for e in patches)
    other = fresh(cli, tmp_path)
    other("pull", f"{proxy.host}/relative-location-chunked:1")
    assert_clean(other)


# ---- credentials stay with the registry that asked for them (issue 8, item 9) ----------

@pytest.fixture(scope="module")
def basic_registry(registry_factory):
    """A plain-HTTP docker-registry with htpasswd basic auth, so a proxy can stand in front of it."""
    return registry_factory("basic")


@pytest.fixture
def front_and_elsewhere(basic_registry):
    """``front``: the proxy pybuild talks to; ``elsewhere``: a second server on another port that
    records the headers it receives and forwards to the registry with its own credentials (as
    storage behind a signed URL does), so transfers sent there still succeed."""
    front, elsewhere = FaultProxy(basic_registry.host), FaultProxy(basic_registry.host)
    elsewhere.upstream_headers = {"Authorization": basic_header()}
    yield front, elsewhere
    front.close()
    elsewhere.close()


def basic_header() -> str:
    import base64

    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def logged_in(cli: CLI, host: str) -> CLI:
    out = cli("login", host, "-u", USER, "--password-stdin", input=PASSWORD.encode())
    assert b"Login Succeeded" in out.stdout
    return cli


def authorized(entries) -> list:
    return [e for e in entries if e.header("Authorization")]


def test_upload_location_on_another_host_gets_no_credentials(cli, front_and_elsewhere, busybox_image):
    front, elsewhere = front_and_elsewhere
    front.location_host = elsewhere.host
    logged_in(cli, front.host)
    cli("push", busybox_image, f"{front.host}/foreign-upload/busybox:1")
    shutil.rmtree(cli.root / "distribution")  # upload again, chunked, rather than mount
    cli("push", "--chunk-size", "256k", busybox_image, f"{front.host}/foreign-upload-chunked/busybox:1")
    uploads = [e for e in elsewhere.log if e.method in ("PUT", "PATCH") and UPLOAD in e.path]
    assert {e.method for e in uploads} == {"PUT", "PATCH"}, [(e.method, e.path) for e in elsewhere.log]
    assert authorized(elsewhere.log) == []
    assert authorized(e for e in front.log if e.method == "POST")  # the registry itself did get them


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_a_challenge_from_another_host_is_not_answered(cli, busybox_image, request, kind):
    """The registry (htpasswd, or bearer tokens) asks the client for credentials through the other
    host: neither the password nor a token goes there."""
    reg = request.getfixturevalue("basic_registry") if kind == "basic" else request.getfixturevalue("token_registry")
    front, elsewhere = FaultProxy(reg.host), FaultProxy(reg.host)
    request.addfinalizer(front.close)
    request.addfinalizer(elsewhere.close)
    front.location_host = elsewhere.host
    logged_in(cli, front.host)
    out = cli("push", busybox_image, f"{front.host}/foreign-challenge/busybox:1", check=False)
    message = out.stderr.decode().strip()
    assert out.returncode == 1 and message.count("\n") == 0, message
    assert elsewhere.host in message and "401" in message and PASSWORD not in message, message
    assert [e.method for e in elsewhere.log] and authorized(elsewhere.log) == []


def test_redirected_manifest_and_blob_gets_carry_no_credentials(cli, front_and_elsewhere, busybox_image, tmp_path):
    front, elsewhere = front_and_elsewhere
    logged_in(cli, front.host)
    ref = pushed(cli, front, busybox_image, "redirected/busybox")
    front.add("GET", r"/manifests/", "redirect", times=100, to=elsewhere.host)
    front.add("GET", BLOB, "redirect", times=100, to=elsewhere.host)
    other = logged_in(fresh(cli, tmp_path), front.host)
    other("pull", ref)
    assert_clean(other)
    redirected = [e.path for e in front.log if e.fault == "redirect"]
    assert any("/manifests/" in p for p in redirected) and any(BLOB in p for p in redirected)
    assert sorted(e.path for e in elsewhere.log) == sorted(redirected)
    assert authorized(elsewhere.log) == [] and len(authorized(front.faults())) == len(redirected)


# ---- deadlines on registry I/O (issue 8, item 2) -----------------------------------------
# Small limits through the environment keep these quick; the assertions are on the outcome
# and the message only.  `timeout=120` on the command turns the old endless wait into a failure.

DEADLINES = {"PYBUILD_REGISTRY_CONNECT_TIMEOUT": "0.5", "PYBUILD_REGISTRY_STALL_TIMEOUT": "0.5",
             "PYBUILD_REGISTRY_MIN_SPEED": "1000", "PYBUILD_REGISTRY_SPEED_WINDOW": "0.5",
             "PYBUILD_REGISTRY_RETRIES": "2"}


def failed_quickly(cli: CLI, *args: str) -> str:
    out = cli(*args, check=False, timeout=120, env=DEADLINES)
    stderr = out.stderr.decode()
    message = stderr.strip().splitlines()[-1]  # after any progress lines
    assert out.returncode == 1 and message.startswith("pybuild: error:") and "Traceback" not in stderr, stderr
    return message


def test_a_silent_registry_fails_the_pull_with_a_stall_timeout(cli):
    server = SilentServer()
    try:
        message = failed_quickly(cli, "pull", f"{server.host}/app:1")
    finally:
        server.close()
    assert server.host in message and "sent nothing for 0.5 s" in message and "stall timeout" in message, message
    assert "PYBUILD_REGISTRY_STALL_TIMEOUT" in message


def test_a_slow_loris_registry_fails_the_pull_below_the_minimum_speed(cli):
    server = DripServer(interval=0.02)  # about 50 bytes/s, far below the 1000 asked for
    try:
        message = failed_quickly(cli, "pull", f"{server.host}/app:1",)
    finally:
        server.close()
    assert server.host in message and "below the minimum speed of 1000 bytes/s" in message, message


def test_a_connect_that_hangs_fails_with_a_connect_timeout(cli):
    listener, queued = unaccepting_port()
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        message = failed_quickly(cli, "pull", f"{host}/app:1")
    finally:
        for sock in (listener, *queued):
            sock.close()
    assert host in message and "connect timeout" in message, message


@pytest.mark.parametrize("action", ["stall", "drip"])
def test_a_blob_that_stalls_or_drips_fails_the_pull_and_stores_nothing(cli, proxy, big_image, tmp_path, action):
    ref = pushed(cli, proxy, big_image, f"slow-{action}")
    digest = layer_digest(cli, big_image)
    proxy.add("GET", BLOB + digest[7:], action, times=100, at=LAYER_BYTES // 2, interval=0.02)
    other = fresh(cli, tmp_path)
    message = failed_quickly(other, "pull", ref)
    assert digest in message and proxy.host in message, message
    assert ("sent nothing for 0.5 s" if action == "stall" else "below the minimum speed") in message, message
    gets = [e for e in proxy.log if e.method == "GET" and digest[7:] in e.path]
    assert len(gets) == 2 and int(gets[1].range[6:-1]) >= LAYER_BYTES // 2  # resumed once, then gave up
    assert not (other.root / "store" / "blobs" / "sha256" / digest[7:]).exists()
    assert_clean(other)


def test_a_registry_that_stops_reading_an_upload_fails_the_push(cli, proxy, big_image):
    proxy.add("PUT", UPLOAD, "stall_request", times=100)
    message = failed_quickly(cli, "push", big_image, f"{proxy.host}/slow-upload:1")
    assert proxy.host in message and "for 0.5 s (stall timeout" in message, message
    digests = [e.path.split("digest=")[-1] for e in proxy.log if e.method == "PUT" and UPLOAD in e.path]
    assert digests and len(digests) == len(set(digests))  # a timed-out upload is not started over
