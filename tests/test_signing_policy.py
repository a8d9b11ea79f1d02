"""``pull`` and ``run`` under containers' ``policy.json``: signed passes, unsigned is refused, and a
refused pull stores nothing.  Policy files are always the test's own (``--policy`` or
``PYBUILD_POLICY``); /etc/containers/policy.json belongs to podman on this machine."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from conftest import CLI
from runner_helpers import needs_root
from test_signing import error_line, keypair, make_keys, push, signer  # noqa: F401 (fixtures)

pytestmark = pytest.mark.registry


def write_policy(path: Path, docker_scopes: dict, default: list | None = None) -> Path:
    path.write_text(json.dumps({"default": default or [{"type": "reject"}],
                                "transports": {"docker": docker_scopes}}))
    return path


def sigstore(pub: Path, identity: dict | None = None, **extra) -> dict:
    requirement = {"type": "sigstoreSigned", "keyPath": str(pub), **extra}
    if identity is not None:
        requirement["signedIdentity"] = identity
    return requirement


MATCH_REPO = {"type": "matchRepository"}


def store_is_empty(root: Path) -> bool:
    blobs = list((root / "store" / "blobs" / "sha256").glob("*")) if (root / "store").exists() else []
    index = root / "store" / "index.json"
    entries = json.loads(index.read_text())["manifests"] if index.exists() else []
    return not blobs and not entries


@pytest.fixture
def images(plain_registry, signer, busybox_image, keypair):
    """``(registry, namespace, signed ref, its digest, unsigned ref)`` in a fresh namespace."""
    reg = plain_registry
    namespace = f"{reg.host}/policy-{os.urandom(4).hex()}"
    signed_ref, unsigned_ref = f"{namespace}/signed:1", f"{namespace}/unsigned:1"
    digest = push(signer, busybox_image, signed_ref)
    signer("sign", "--key", str(keypair[0]), signed_ref)
    push(signer, busybox_image, unsigned_ref)
    return reg, namespace, signed_ref, digest, unsigned_ref


@pytest.fixture
def puller(tmp_path: Path, signer: CLI) -> CLI:
    """A second root that has never seen the images."""
    other = CLI(tmp_path / "puller")
    other.env.update({k: v for k, v in signer.env.items() if k != "PYBUILD_ROOT"})
    return other


def test_pull_signed_passes_unsigned_is_refused_and_stores_nothing(images, keypair, puller, tmp_path):
    reg, namespace, signed_ref, digest, unsigned_ref = images
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(keypair[1], MATCH_REPO)]})
    refused = puller("pull", "--policy", str(policy), unsigned_ref, check=False)
    err = error_line(refused)
    assert f"policy {policy} rejects {unsigned_ref} (scope docker:{namespace})" in err
    assert "has no signatures" in err
    assert store_is_empty(puller.root)
    out = puller("pull", "--policy", str(policy), signed_ref)
    assert f"Digest: {digest}".encode() in out.stdout
    assert b"signed" in puller("images").stdout


def test_pull_with_another_key_is_refused(images, signer, puller, tmp_path):
    reg, namespace, signed_ref, digest, unsigned_ref = images
    _, other_pub = make_keys(signer, tmp_path / "other")
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(other_pub, MATCH_REPO)]})
    err = error_line(puller("pull", "--policy", str(policy), signed_ref, check=False))
    assert "does not verify with" in err
    assert store_is_empty(puller.root)


def test_policy_from_environment_and_key_data(images, keypair, puller, tmp_path):
    reg, namespace, signed_ref, digest, unsigned_ref = images
    key_data = base64.b64encode(keypair[1].read_bytes()).decode()
    policy = write_policy(tmp_path / "env-policy.json",
                          {namespace: [{"type": "sigstoreSigned", "keyData": key_data, "signedIdentity": MATCH_REPO}]})
    env = {"PYBUILD_POLICY": str(policy)}
    err = error_line(puller("pull", unsigned_ref, check=False, env=env))
    assert "has no signatures" in err and "keyData" not in err.split("rejects")[0]
    puller("pull", signed_ref, env=env)


def test_scope_precedence_reject_and_accept_anything(images, keypair, puller, tmp_path):
    """The most specific scope wins: repository over namespace over host over the default."""
    reg, namespace, signed_ref, digest, unsigned_ref = images
    policy = write_policy(tmp_path / "policy.json", {
        reg.host: [{"type": "reject"}],
        namespace: [sigstore(keypair[1], MATCH_REPO)],
        f"{namespace}/unsigned": [{"type": "insecureAcceptAnything"}],
    }, default=[{"type": "insecureAcceptAnything"}])
    puller("pull", "--policy", str(policy), unsigned_ref)  # its own scope accepts anything
    puller("pull", "--policy", str(policy), signed_ref)
    err = error_line(puller("pull", "--policy", str(policy), f"{reg.host}/elsewhere/x:1", check=False))
    assert f"(scope docker:{reg.host}): the policy rejects every image in this scope" in err
    assert not [path for _, path in reg.requests() if "/elsewhere/" in path]  # refused before asking the registry


def test_default_identity_needs_digest_for_cosign_signatures(images, keypair, puller, tmp_path):
    """``matchRepoDigestOrExact`` (the default): cosign's signatures name a repository, not a tag,
    so a pull by tag is refused (as containers/image refuses it) and a pull by digest passes."""
    reg, namespace, signed_ref, digest, unsigned_ref = images
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(keypair[1])]})
    err = error_line(puller("pull", "--policy", str(policy), signed_ref, check=False))
    assert "needs an exact match" in err and "matchRepository" in err
    by_digest = f"{namespace}/signed@{digest}"
    puller("pull", "--policy", str(policy), by_digest)


def test_exact_repository_identity_accepts_a_mirror(images, keypair, signer, puller, tmp_path):
    """A signed image copied (with its signature) to another repository passes only when the
    policy names the repository it was signed for."""
    reg, namespace, signed_ref, digest, unsigned_ref = images
    mirror = f"{namespace}/mirror:1"
    signer("copy", f"docker://{signed_ref}", f"docker://{mirror}")
    signer("copy", f"docker://{namespace}/signed:sha256-{digest[7:]}.sig",
           f"docker://{namespace}/mirror:sha256-{digest[7:]}.sig")
    strict = write_policy(tmp_path / "strict.json", {namespace: [sigstore(keypair[1], MATCH_REPO)]})
    err = error_line(puller("pull", "--policy", str(strict), mirror, check=False))
    assert f"signed for {namespace}/signed, not {namespace}/mirror" in err
    mirror_ok = write_policy(tmp_path / "mirror.json", {namespace: [sigstore(
        keypair[1], {"type": "exactRepository", "dockerRepository": f"{namespace}/signed"})]})
    puller("pull", "--policy", str(mirror_ok), mirror)


def test_unsupported_requirements_and_bad_files_are_one_line_errors(images, keypair, puller, tmp_path):
    reg, namespace, signed_ref, digest, unsigned_ref = images
    gpg = write_policy(tmp_path / "gpg.json", {namespace: [{"type": "signedBy", "keyType": "GPGKeys",
                                                            "keyPath": "/nonexistent"}]})
    assert "signedBy" in error_line(puller("pull", "--policy", str(gpg), signed_ref, check=False))
    fulcio = write_policy(tmp_path / "fulcio.json", {namespace: [{"type": "sigstoreSigned", "fulcio": {}}]})
    assert "fulcio is not supported" in error_line(puller("pull", "--policy", str(fulcio), signed_ref, check=False))
    (tmp_path / "broken.json").write_text("{not json")
    assert "cannot read policy file" in error_line(
        puller("pull", "--policy", str(tmp_path / "broken.json"), signed_ref, check=False))
    no_default = tmp_path / "nodefault.json"
    no_default.write_text(json.dumps({"transports": {}}))
    assert '"default"' in error_line(puller("pull", "--policy", str(no_default), signed_ref, check=False))
    assert store_is_empty(puller.root)


@needs_root
def test_run_pulls_under_the_policy(images, keypair, puller, tmp_path):
    reg, namespace, signed_ref, digest, unsigned_ref = images
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(keypair[1], MATCH_REPO)]})
    refused = puller("run", "--rm", "--policy", str(policy), unsigned_ref, "echo", "ran", check=False)
    assert "has no signatures" in error_line(refused)
    assert b"ran" not in refused.stdout
    assert store_is_empty(puller.root)
    assert not list(puller.root.glob("containers/*"))
    ran = puller("run", "--rm", "--policy", str(policy), signed_ref, "echo", "ran")
    assert ran.stdout == b"ran\n"


IDENTITY_CASES = [
    # signedIdentity, image pulled, reference in the signature, accepted?
    ({"type": "matchExact"}, "r.example/a/b:1", "r.example/a/b:1", True),
    ({"type": "matchExact"}, "r.example/a/b:1", "r.example/a/b:2", False),
    ({"type": "matchExact"}, "r.example/a/b:1", "r.example/a/b", False),
    ({"type": "matchRepoDigestOrExact"}, f"r.example/a/b@sha256:{'1' * 64}", "r.example/a/b", True),
    ({"type": "matchRepoDigestOrExact"}, "r.example/a/b:1", "r.example/a/b:1", True),
    ({"type": "matchRepository"}, "r.example/a/b:1", "r.example/a/b:7", True),
    ({"type": "matchRepository"}, "r.example/a/b:1", "r.example/a/c", False),
    ({"type": "exactReference", "dockerReference": "r.example/x:9"}, "r.example/a/b:1", "r.example/x:9", True),
    ({"type": "exactReference", "dockerReference": "r.example/x:9"}, "r.example/a/b:1", "r.example/x:8", False),
    ({"type": "exactRepository", "dockerRepository": "r.example/x"}, "mirror.example/a:1", "r.example/x", True),
    ({"type": "exactRepository", "dockerRepository": "r.example/x"}, "mirror.example/a:1", "r.example/y", False),
    ({"type": "remapIdentity", "prefix": "mirror.example/ns", "signedPrefix": "r.example/ns"},
     "mirror.example/ns/app:1", "r.example/ns/app:1", True),
    ({"type": "remapIdentity", "prefix": "mirror.example/ns", "signedPrefix": "r.example/ns"},
     "mirror.example/ns/app:1", "r.example/other/app:1", False),
    ({"type": "remapIdentity", "prefix": "mirror.example/ns", "signedPrefix": "r.example/ns"},
     "mirror.example/nsx/app:1", "r.example/nsx/app:1", False),  # prefixes end at a path component
]


@pytest.mark.parametrize("spec,image,signed,accepted", IDENTITY_CASES)
def test_signed_identity_rules(spec, image, signed, accepted):
    """containers-policy.json(5)'s signedIdentity semantics, one rule at a time."""
    from registry.reference import parse
    from registry.signing.policy import identity_rule

    rule = identity_rule(spec)
    assert (rule(parse(image, default_tag=False), parse(signed, default_tag=False)) is None) == accepted


def test_invalid_signed_identity_is_refused():
    from registry.signing.errors import PolicyInvalid
    from registry.signing.policy import identity_rule

    for spec in ({"type": "matchAnything"}, {"type": "exactReference"}, {"type": "matchExact", "extra": 1}):
        with pytest.raises(PolicyInvalid):
            identity_rule(spec)


def test_copy_from_a_registry_obeys_the_policy(images, keypair, puller, tmp_path):
    """As skopeo copy: an image read from a registry must pass the policy, whatever the destination."""
    reg, namespace, signed_ref, digest, unsigned_ref = images
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(keypair[1], MATCH_REPO)]})
    err = error_line(puller("copy", "--policy", str(policy), f"docker://{unsigned_ref}", "store:unsigned:1",
                            check=False))
    assert "has no signatures" in err
    archive = tmp_path / "unsigned.tar"
    assert "has no signatures" in error_line(puller("copy", "--policy", str(policy), f"docker://{unsigned_ref}",
                                                    f"docker-archive:{archive}", check=False))
    assert store_is_empty(puller.root) and not archive.exists()
    puller("copy", "--policy", str(policy), f"docker://{signed_ref}", "store:signed:1")
