"""pybuild push/pull/copy/login/logout against real docker-registry processes.

Three set-ups (``any_registry``): plain HTTP, TLS + htpasswd basic auth, bearer
tokens from the test token server.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import CLI
from registry_fixtures import PASSWORD, USER, Registry, http_get

pytestmark = pytest.mark.registry


def use_registry(cli: CLI, reg: Registry, config_dir: Path, login: bool = True) -> CLI:
    """Point the CLI at ``reg`` (certs, private DOCKER_CONFIG) and log in when it needs credentials."""
    cli.env.update(reg.env)
    cli.env["DOCKER_CONFIG"] = str(config_dir)
    if login and reg.credentials:
        out = cli("login", reg.host, "-u", USER, "--password-stdin", input=PASSWORD.encode())
        assert b"Login Succeeded" in out.stdout
    return cli


def uploads(reg: Registry, repository: str) -> list[tuple[str, str]]:
    """Blob upload requests (POST/PATCH/PUT, mounts excluded) the registry logged for a repository."""
    return [(m, p) for m, p in reg.requests()
            if p.startswith(f"/v2/{repository}/blobs/uploads/") and "mount=" not in p]


def second_root(tmp_path: Path, cli: CLI, name: str = "other") -> CLI:
    other = CLI(tmp_path / name)
    other.env.update({k: v for k, v in cli.env.items() if k != "PYBUILD_ROOT"})
    return other


def assert_no_secret(*outputs: bytes) -> None:
    for out in outputs:
        assert PASSWORD.encode() not in out


def test_push_pull_roundtrip(any_registry, pybuild, busybox_image, tmp_path):
    reg = any_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    if reg.credentials:
        config = tmp_path / "docker" / "config.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert PASSWORD not in config.read_text() or reg.kind == "tls"
    target = f"{reg.host}/roundtrip/busybox:1"
    pushed = cli("push", busybox_image, target, "--digestfile", str(tmp_path / "digest"))
    digest = (tmp_path / "digest").read_text()
    assert digest.startswith("sha256:") and digest.encode() in pushed.stdout
    assert_no_secret(pushed.stdout, pushed.stderr)

    other = second_root(tmp_path, cli)
    pulled = other("pull", target)
    assert f"Digest: {digest}".encode() in pulled.stdout
    assert_no_secret(pulled.stdout, pulled.stderr)
    info = json.loads(other("inspect", target).stdout)[0]
    assert info["Descriptor"]["digest"] == digest  # the manifest is stored byte for byte
    assert json.loads(cli("inspect", busybox_image).stdout)[0]["Id"] == info["Id"]
    assert b"store clean" in other("fsck").stdout
    # A second pull fetches nothing again.
    again = other("pull", target)
    assert b"Pull complete" not in again.stderr and b"Already exists" in again.stderr


def test_noop_push_uploads_nothing(any_registry, pybuild, busybox_image, tmp_path):
    reg = any_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    target = f"{reg.host}/noop/busybox:1"
    cli("push", busybox_image, target)
    before = len(reg.requests())
    cli("push", busybox_image, target)
    after = reg.requests()[before:]
    assert after and all(method in ("GET", "HEAD") for method, _ in after), after
    # Same manifest under a new tag: only the manifest is written.
    cli("push", busybox_image, f"{reg.host}/noop/busybox:2")
    newer = reg.requests()[before + len(after):]
    assert [m for m, _ in newer if m not in ("GET", "HEAD")] == ["PUT"]


def test_cross_repository_mount(any_registry, pybuild, busybox_image, tmp_path):
    reg = any_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    cli("push", busybox_image, f"{reg.host}/mount-a/busybox:1")
    assert uploads(reg, "mount-a/busybox")
    out = cli("push", busybox_image, f"{reg.host}/mount-b/busybox:1")
    assert b"Mounted" in out.stderr
    assert uploads(reg, "mount-b/busybox") == []
    mounts = [p for m, p in reg.requests() if m == "POST" and p.startswith("/v2/mount-b/") and "mount=" in p]
    assert len(mounts) == 2 and all("from=mount-a" in p for p in mounts)
    # Registry to registry copy mounts from the source repository too.
    cli("copy", f"{reg.host}/mount-a/busybox:1", f"docker://{reg.host}/mount-c/busybox:1")
    assert uploads(reg, "mount-c/busybox") == []


def test_copy_between_every_kind(any_registry, pybuild, busybox_image, tmp_path):
    reg = any_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    src = f"{reg.host}/copy-src/busybox:1"
    digest = cli("push", "-q", busybox_image, src).stdout.decode().split()[-1]
    layout, darchive, oarchive = tmp_path / "layout", tmp_path / "d.tar", tmp_path / "o.tar"
    fresh = second_root(tmp_path, cli, "fresh")
    steps = [
        (src, f"oci:{layout}:v1"),
        (f"oci:{layout}:v1", f"{reg.host}/copy-layout/busybox:1"),
        (src, f"docker-archive:{darchive}"),
        (src, f"oci-archive:{oarchive}:copy/busybox:2"),
        (f"oci-archive:{oarchive}", "store:copied:1"),
        ("store:copied:1", f"{reg.host}/copy-store/busybox:1"),
    ]
    for source, dest in steps:
        out = fresh("copy", "-q", source, dest).stdout.decode().strip()
        assert out == digest, (source, dest)
    skopeo = subprocess.run(["skopeo", "inspect", f"oci:{layout}:v1"], capture_output=True, text=True, check=True)
    assert json.loads(skopeo.stdout)["Digest"] == digest
    loaded = subprocess.run(["skopeo", "inspect", f"docker-archive:{darchive}"], capture_output=True, check=True)
    assert json.loads(loaded.stdout)["Layers"]
    assert b"store clean" in fresh("fsck").stdout


def test_logout_then_access_is_refused(any_registry, pybuild, busybox_image, tmp_path):
    reg = any_registry
    if not reg.credentials:
        pytest.skip("the plain registry needs no login")
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    cli("push", busybox_image, f"{reg.host}/private/busybox:1")
    assert f"Removing login credentials for {reg.host}".encode() in cli("logout", reg.host).stdout
    assert reg.host not in (tmp_path / "docker" / "config.json").read_text()
    assert b"Not logged in" in cli("logout", reg.host).stdout
    denied = cli("pull", f"{reg.host}/private/busybox:1", check=False)
    assert denied.returncode == 1
    message = denied.stderr.decode().strip()
    assert message.count("\n") == 0 and "pybuild login" in message and reg.host in message, message


def test_wrong_password_is_refused_without_echoing_it(any_registry, pybuild, tmp_path):
    reg = any_registry
    if not reg.credentials:
        pytest.skip("the plain registry needs no login")
    cli = use_registry(pybuild, reg, tmp_path / "docker", login=False)
    wrong = "not-the-Right-pa55word"
    out = cli("--debug", "login", reg.host, "-u", USER, "--password-stdin", input=wrong.encode(), check=False)
    assert out.returncode != 0
    assert wrong.encode() not in out.stdout + out.stderr
    out = cli("login", reg.host, "-u", USER, "--password-stdin", input=wrong.encode(), check=False)
    assert out.returncode == 1 and b"login to" in out.stderr and wrong.encode() not in out.stderr
    assert not (tmp_path / "docker" / "config.json").exists()


def test_credentials_never_printed_with_debug(tls_registry, pybuild, busybox_image, tmp_path):
    cli = use_registry(pybuild, tls_registry, tmp_path / "docker")
    target = f"{tls_registry.host}/secret/busybox:1"
    for args in (("--debug", "push", busybox_image, target), ("--debug", "pull", target),
                 ("--debug", "pull", f"{tls_registry.host}/secret/missing:1")):
        out = cli(*args, check=False)
        assert b"debug:" in out.stderr
        assert_no_secret(out.stdout, out.stderr)
        assert b"Authorization" not in out.stderr


def test_token_server_scopes_and_identity_token(token_registry, pybuild, busybox_image, tmp_path):
    reg = token_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    entry = json.loads((tmp_path / "docker" / "config.json").read_text())["auths"][reg.host]
    assert entry.get("identitytoken")  # the refresh token, not the password, is saved
    assert PASSWORD not in json.dumps(entry)
    assert reg.token_server is not None
    seen = len(reg.token_server.requests)
    cli("push", busybox_image, f"{reg.host}/scoped/busybox:1")
    cli("push", busybox_image, f"{reg.host}/scoped2/busybox:1")
    grants = reg.token_server.requests[seen:]
    assert all(g["method"] == "POST" and g["user"] == USER for g in grants)  # refresh-token grant
    scopes = {s for g in grants for s in g["scopes"]}
    assert "repository:scoped/busybox:pull,push" in scopes
    assert "repository:scoped/busybox:pull" in scopes  # asked for when mounting into scoped2


def test_anonymous_token_for_public_pull(token_registry, pybuild, busybox_image, tmp_path):
    reg = token_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    cli("push", busybox_image, f"{reg.host}/public/busybox:1")
    anon = second_root(tmp_path, cli, "anon")
    anon.env["DOCKER_CONFIG"] = str(tmp_path / "empty-config")
    anon("pull", f"{reg.host}/public/busybox:1")
    # The image is in the anonymous store now, so only the registry's refusal can fail this push.
    denied = anon("push", f"{reg.host}/public/busybox:1", f"{reg.host}/public/busybox:2", check=False)
    message = denied.stderr.decode().strip().splitlines()[-1]
    assert denied.returncode == 1 and message.startswith("pybuild: error:"), denied.stderr
    assert "401" in message and f"pybuild login {reg.host}" in message, message
    missing = anon("pull", f"{reg.host}/public/busybox:2", check=False)  # nothing was written
    assert missing.returncode == 1 and b"not found" in missing.stderr


def test_tls_trust_sources(tls_registry, pybuild, busybox_image, tmp_path):
    reg = tls_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    cli("push", busybox_image, f"{reg.host}/trust/busybox:1")
    untrusting = second_root(tmp_path, cli, "untrusting")
    untrusting.env["PYBUILD_CERTS_D"] = str(tmp_path / "no-certs")
    failed = untrusting("pull", f"{reg.host}/trust/busybox:1", check=False)
    assert failed.returncode == 1 and b"TLS" in failed.stderr and b"ca.crt" in failed.stderr
    ca = Path(reg.env["PYBUILD_CERTS_D"]) / reg.host / "ca.crt"
    untrusting("pull", f"{reg.host}/trust/busybox:1", env={"SSL_CERT_FILE": str(ca)})
    untrusting("pull", "--insecure", f"{reg.host}/trust/busybox:1")


def test_chunked_upload(plain_registry, pybuild, busybox_image, tmp_path):
    reg = plain_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    cli("push", "--chunk-size", "256k", busybox_image, f"{reg.host}/chunked/busybox:1")
    patches = [p for m, p in uploads(reg, "chunked/busybox") if m == "PATCH"]
    assert len(patches) >= 4  # the ~1.4 MB busybox layer in 256 KiB pieces
    other = second_root(tmp_path, cli)
    other("pull", f"{reg.host}/chunked/busybox:1")
    assert b"store clean" in other("fsck").stdout


def test_all_tags(plain_registry, pybuild, busybox_image, tmp_path):
    reg = plain_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    for tag in ("a", "b", "c"):
        cli("tag", busybox_image, f"{reg.host}/alltags/busybox:{tag}")
    out = cli("push", "--all-tags", f"{reg.host}/alltags/busybox")
    for tag in ("a", "b", "c"):
        assert f"{tag}: digest: sha256:".encode() in out.stdout
    status, tags = http_get(f"http://{reg.host}/v2/alltags/busybox/tags/list")
    assert status == 200 and sorted(json.loads(tags)["tags"]) == ["a", "b", "c"]


def test_missing_image_is_a_clear_one_liner(any_registry, pybuild, tmp_path):
    reg = any_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    out = cli("pull", f"{reg.host}/nothing/here:1", check=False)
    message = out.stderr.decode().strip()
    assert out.returncode == 1 and message.count("\n") == 0, message
    assert f"{reg.host}/nothing/here:1" in message and "not found" in message
    missing = cli("push", "no-such-image", f"{reg.host}/x/y:1", check=False)
    assert missing.returncode == 1 and b"no-such-image" in missing.stderr


def test_credential_helper(plain_registry, pybuild, busybox_image, tmp_path):
    """``credsStore`` goes through a docker-credential-NAME program (one written for this test)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    vault = tmp_path / "vault.json"
    helper = bindir / "docker-credential-pbtest"
    helper.write_text(f"""#!{os.environ.get('PYTHON', '/usr/bin/python3')}
import json, sys
path = {str(vault)!r}
try:
    data = json.load(open(path))
except FileNotFoundError:
    data = {{}}
action, payload = sys.argv[1], sys.stdin.read()
if action == "store":
    entry = json.loads(payload); data[entry["ServerURL"]] = entry
elif action == "get":
    if payload.strip() not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps(data[payload.strip()])); sys.exit(0)
elif action == "erase":
    data.pop(payload.strip(), None)
json.dump(data, open(path, "w"))
""")
    helper.chmod(0o755)
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credsStore": "pbtest"}))
    cli = use_registry(pybuild, plain_registry, config_dir, login=False)
    cli.env["PATH"] = f"{bindir}:{os.environ['PATH']}"
    cli("login", plain_registry.host, "-u", "helper-user", "--password-stdin", input=b"helper-secret")
    assert json.loads(vault.read_text())[plain_registry.host]["Secret"] == "helper-secret"
    assert "helper-secret" not in (config_dir / "config.json").read_text()
    cli("push", busybox_image, f"{plain_registry.host}/helper/busybox:1")
    cli("logout", plain_registry.host)
    assert json.loads(vault.read_text()) == {}


def _push_platform_variant(client, image_manifest: dict, store, arch: str) -> tuple[bytes, str]:
    """Push a copy of an image's config with another architecture; return (manifest bytes, digest)."""
    from registry import oci

    config = dict(store.image("busybox:latest").config, architecture=arch)
    raw_config = oci.canonical_json(config)
    desc = oci.Descriptor(oci.OCI_CONFIG, oci.sha256_digest(raw_config), len(raw_config))
    if client.head_blob(desc.digest) is None:
        client.upload_blob(desc, [raw_config])
    manifest = dict(image_manifest, config=desc.to_json(), mediaType=oci.OCI_MANIFEST)
    raw = json.dumps(manifest, indent=3).encode()  # not canonical on purpose: bytes must be kept as served
    return raw, client.put_manifest(oci.sha256_digest(raw), raw, oci.OCI_MANIFEST)


def test_pull_picks_the_platform_from_an_index(plain_registry, pybuild, busybox_image, tmp_path, monkeypatch):
    from registry import oci
    from registry.remote.client import RegistryClient
    from registry.store import Store

    reg = plain_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    cli("push", busybox_image, f"{reg.host}/multi/busybox:base")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    store = Store(cli.root)
    client = RegistryClient(reg.host, "multi/busybox", push=True, session=None)
    base = json.loads(client.get_manifest("base").raw)
    variants = {arch: _push_platform_variant(client, base, store, arch) for arch in ("amd64", "arm64")}
    index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [
        {"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": len(raw),
         "platform": {"os": "linux", "architecture": arch}} for arch, (raw, digest) in variants.items()]}
    raw_index = json.dumps(index).encode()
    index_digest = client.put_manifest("multi", raw_index, oci.OCI_INDEX)

    for args, arch in ((["--platform", "linux/arm64"], "arm64"), ([], "amd64")):
        other = second_root(tmp_path, cli, f"pull-{arch}")
        out = other("pull", *args, f"{reg.host}/multi/busybox:multi")
        assert f"Digest: {index_digest}".encode() in out.stdout
        info = json.loads(other("inspect", f"{reg.host}/multi/busybox:multi").stdout)[0]
        assert info["Descriptor"]["digest"] == variants[arch][1]
        assert info["Architecture"] == arch
    by_digest = second_root(tmp_path, cli, "by-digest")
    by_digest("pull", f"{reg.host}/multi/busybox@{variants['arm64'][1]}")
    missing = by_digest("pull", "--platform", "linux/s390x", f"{reg.host}/multi/busybox:multi", check=False)
    assert missing.returncode == 1 and b"s390x" in missing.stderr and b"arm64" in missing.stderr


def test_tokens_are_cached_per_scope_and_refreshed(token_registry, monkeypatch):
    """Counted at the token server: one token per scope set while it is fresh, a new one when the
    token's ``expires_in`` leaves less than the refresh margin, and a new one after a rejection."""
    from registry.remote.credentials import Credentials
    from registry.remote.session import Session

    reg = token_registry
    server = reg.token_server
    assert server is not None
    session = Session(reg.host, credentials=Credentials(USER, PASSWORD))

    def tags(repository: str) -> int:
        """GET the tag list: 404 means authorised (the repository does not exist), 401 refused."""
        return session.request("GET", f"/v2/{repository}/tags/list",
                               frozenset({f"repository:{repository}:pull"})).status_code

    def tokens_for(*repositories: str) -> int:
        seen = len(server.requests)
        assert [tags(r) for r in repositories] == [404] * len(repositories)
        return len(server.requests) - seen

    session.ping()
    assert tokens_for("cache/test", "cache/test", "cache/test") == 1  # cached for its scope set
    assert tokens_for("cache/other", "cache/test") == 1  # another scope, another token
    monkeypatch.setattr(server, "lifetime", 5)  # expires_in within the 10 s refresh margin
    assert tokens_for("cache/short", "cache/short", "cache/short") == 3  # fetched again for each use
    monkeypatch.setattr(server, "lifetime", 300)
    server.bad_tokens = 1  # the next token is one the registry rejects: dropped and fetched again
    assert tokens_for("cache/rejected", "cache/rejected") == 2


def test_login_logout_on_an_open_registry(plain_registry, pybuild, tmp_path):
    cli = use_registry(pybuild, plain_registry, tmp_path / "docker", login=False)
    cli("login", plain_registry.host, "-u", "anyone", "--password-stdin", input=b"pw-open-registry")
    config = tmp_path / "docker" / "config.json"
    assert plain_registry.host in json.loads(config.read_text())["auths"]
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    cli("logout", plain_registry.host)
    assert plain_registry.host not in json.loads(config.read_text())["auths"]


def test_insecure_registries_from_the_environment(tls_registry, pybuild, busybox_image, tmp_path):
    reg = tls_registry
    cli = use_registry(pybuild, reg, tmp_path / "docker")
    cli.env["PYBUILD_CERTS_D"] = str(tmp_path / "no-certs")
    refused = cli("push", busybox_image, f"{reg.host}/insecure-env/busybox:1", check=False)
    assert refused.returncode == 1 and b"TLS" in refused.stderr
    cli("push", busybox_image, f"{reg.host}/insecure-env/busybox:1",
        env={"PYBUILD_INSECURE_REGISTRIES": f"other.example:5000, {reg.host}"})
