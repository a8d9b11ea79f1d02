"""pybuild's signatures against containers/image, the other implementation of cosign's format
(skopeo 1.9 and podman 4.3 as installed).  Every policy and registries.d file is the test's own.

Debian builds skopeo and podman with sigstore disabled ("Debian-local change: sigstore
disabled"); the checks that need their sigstore code skip on exactly that message, so they
run wherever the tools have it.  What does work with them here, copying signatures along
with an image, is checked without condition.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_signing import PASSWORD, error_line, keypair, make_keys, push, signer  # noqa: F401 (fixtures)
from test_signing_policy import MATCH_REPO, sigstore, write_policy

pytestmark = [pytest.mark.registry,
              pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")]

SIGSTORE_DISABLED = "sigstore disabled"


@pytest.fixture
def registries_d(tmp_path: Path) -> Path:
    """A registries.d folder that tells containers/image to use cosign's attachments."""
    folder = tmp_path / "registries.d"
    folder.mkdir()
    (folder / "default.yaml").write_text("default-docker:\n  use-sigstore-attachments: true\n")
    return folder


def skopeo(policy: Path, registries_d: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", "--policy", str(policy), "--registries.d", str(registries_d), *args],
                          capture_output=True, text=True, timeout=120)


def skip_if_sigstore_disabled(proc: subprocess.CompletedProcess, tool: str) -> None:
    if SIGSTORE_DISABLED in proc.stderr:
        pytest.skip(f"{tool} here is built with sigstore disabled: {proc.stderr.strip().splitlines()[-1]}")


@pytest.fixture
def signed_image(plain_registry, signer, busybox_image, keypair):
    reg = plain_registry
    namespace = f"{reg.host}/interop-{os.urandom(4).hex()}"
    ref = f"{namespace}/app:1"
    digest = push(signer, busybox_image, ref)
    signer("sign", "--key", str(keypair[0]), ref)
    push(signer, busybox_image, f"{namespace}/unsigned:1")
    return namespace, ref, digest


def test_skopeo_copy_carries_pybuild_signatures(signed_image, keypair, signer, registries_d, tmp_path):
    """skopeo reads pybuild's signature manifest as cosign attachments and writes them at the
    destination; pybuild verifies them there (key and digest hold; the identity is the source's)."""
    namespace, ref, digest = signed_image
    accept = tmp_path / "accept.json"
    accept.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    copied = skopeo(accept, registries_d, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{ref}", f"docker://{namespace}/copy:1")
    assert copied.returncode == 0, copied.stderr
    assert "Storing signatures" in copied.stdout
    err = error_line(signer("verify", "--key", str(keypair[1]), f"{namespace}/copy:1", check=False))
    assert f"signature 1: signed for {namespace}/app, not {namespace}/copy" in err  # only the identity differs
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(
        keypair[1], {"type": "exactRepository", "dockerRepository": f"{namespace}/app"})]})
    signer("pull", "--policy", str(policy), f"{namespace}/copy:1")


def test_skopeo_verifies_pybuild_signatures(signed_image, keypair, registries_d, tmp_path):
    namespace, ref, digest = signed_image
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(keypair[1], MATCH_REPO)]})
    policy_text = json.loads(policy.read_text())
    policy_text["transports"]["dir"] = {"": [{"type": "insecureAcceptAnything"}]}
    policy.write_text(json.dumps(policy_text))
    signed = skopeo(policy, registries_d, "copy", "--src-tls-verify=false", f"docker://{ref}",
                    f"dir:{tmp_path / 'signed'}")
    skip_if_sigstore_disabled(signed, "skopeo")
    assert signed.returncode == 0, signed.stderr
    unsigned = skopeo(policy, registries_d, "copy", "--src-tls-verify=false", f"docker://{namespace}/unsigned:1",
                      f"dir:{tmp_path / 'unsigned'}")
    assert unsigned.returncode != 0 and "signature" in unsigned.stderr.lower()


def test_podman_pull_under_policy_with_pybuild_signatures(signed_image, keypair, registries_d, tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    namespace, ref, digest = signed_image
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(keypair[1], MATCH_REPO)]})
    home = tmp_path / "home"  # podman reads $HOME/.config/containers/registries.d
    (home / ".config" / "containers").mkdir(parents=True)
    shutil.copytree(registries_d, home / ".config" / "containers" / "registries.d")
    env = {**os.environ, "HOME": str(home)}
    runroot = tempfile.mkdtemp(prefix="pbsig-")  # podman wants a runroot path under 50 characters
    base = ["podman", "--storage-driver", "vfs", "--root", str(tmp_path / "podman-root"), "--runroot", runroot,
            "--tmpdir", runroot]
    try:
        pulled = subprocess.run([*base, "pull", "--signature-policy", str(policy), "--tls-verify=false", ref],
                                capture_output=True, text=True, env=env, timeout=300)
        skip_if_sigstore_disabled(pulled, "podman")
        assert pulled.returncode == 0, pulled.stderr
        refused = subprocess.run([*base, "pull", "--signature-policy", str(policy), "--tls-verify=false",
                                  f"{namespace}/unsigned:1"], capture_output=True, text=True, env=env, timeout=300)
        assert refused.returncode != 0
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def test_pybuild_verifies_what_skopeo_signed(plain_registry, signer, busybox_image, registries_d, tmp_path):
    """skopeo signs with a key pybuild generated in cosign's format; pybuild verifies the result."""
    key, pub = make_keys(signer, tmp_path / "ck", "cosign", "--format", "cosign")
    namespace = f"{plain_registry.host}/interop-{os.urandom(4).hex()}"
    push(signer, busybox_image, f"{namespace}/src:1")
    (tmp_path / "pass").write_text(PASSWORD)
    accept = tmp_path / "accept.json"
    accept.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    signed = skopeo(accept, registries_d, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    "--sign-by-sigstore-private-key", str(key), "--sign-passphrase-file", str(tmp_path / "pass"),
                    f"docker://{namespace}/src:1", f"docker://{namespace}/signed:1")
    skip_if_sigstore_disabled(signed, "skopeo")
    assert signed.returncode == 0, signed.stderr
    signer("verify", "--key", str(pub), f"{namespace}/signed:1")
    policy = write_policy(tmp_path / "policy.json", {namespace: [sigstore(pub)]})  # skopeo signs name:tag
    signer("pull", "--policy", str(policy), f"{namespace}/signed:1")
