"""``pybuild key``, ``sign`` and ``verify`` in cosign's format, against real docker-registry processes.

The signature is checked by an independent implementation (``openssl dgst``), and every
tampering a registry attacker can do (move the tag, alter the payload, copy a signature
to another image, sign with another key) must fail verification with a message that
says which.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import CLI, PYBUILD
from registry_fixtures import Registry, http_get
from test_registry_client import use_registry

pytestmark = pytest.mark.registry

PASSWORD = "correct horse battery staple"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"


def make_keys(cli: CLI, folder: Path, prefix: str = "cosign", *extra: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = cli("key", "generate", "--output-key-prefix", str(folder / prefix), *extra,
              env={"PYBUILD_KEY_PASSWORD": PASSWORD})
    assert b"Private key written to" in out.stdout
    return folder / f"{prefix}.key", folder / f"{prefix}.pub"


@pytest.fixture
def signer(pybuild: CLI, tmp_path: Path) -> CLI:
    """The CLI with the key passphrase in its environment."""
    pybuild.env["PYBUILD_KEY_PASSWORD"] = PASSWORD
    return pybuild


@pytest.fixture
def keypair(signer: CLI, tmp_path: Path) -> tuple[Path, Path]:
    return make_keys(signer, tmp_path / "keys")


def push(cli: CLI, image: str, target: str) -> str:
    return cli("push", "-q", image, target).stdout.decode().strip().splitlines()[-1]


def signature_manifest(reg: Registry, repository: str, digest: str) -> dict:
    status, body = http_get(f"http://{reg.host}/v2/{repository}/manifests/{digest.replace(':', '-')}.sig",
                            Accept="application/vnd.oci.image.manifest.v1+json")
    assert status == 200, body
    return json.loads(body)


def blob(reg: Registry, repository: str, digest: str) -> bytes:
    status, body = http_get(f"http://{reg.host}/v2/{repository}/blobs/{digest}")
    assert status == 200
    return body


def put_signature_manifest(reg: Registry, repository: str, digest: str, layers: list[tuple[bytes, str]]) -> None:
    """Write a signature manifest by hand (what an attacker with push access can do)."""
    from registry import oci
    from registry.remote.client import RegistryClient

    client = RegistryClient(reg.host, repository, push=True)
    descs = []
    for payload, signature in layers:
        desc = oci.Descriptor(SIMPLESIGNING, oci.sha256_digest(payload), len(payload), {ANNOTATION: signature})
        client.upload_blob(desc, [payload])
        descs.append(desc)
    config = b"{}"
    config_desc = oci.Descriptor(oci.OCI_CONFIG, oci.sha256_digest(config), len(config))
    client.upload_blob(config_desc, [config])
    raw = json.dumps(oci.make_manifest(config_desc, descs)).encode()
    client.put_manifest(digest.replace(":", "-") + ".sig", raw, oci.OCI_MANIFEST)


def error_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "Traceback" not in err
    return err


# ---- keys ----------------------------------------------------------------------------

def test_key_generate_writes_encrypted_private_key_openssl_reads(signer, tmp_path):
    key, pub = make_keys(signer, tmp_path / "k")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    text = subprocess.run(["openssl", "pkey", "-in", str(key), "-passin", f"pass:{PASSWORD}", "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "prime256v1" in text or "P-256" in text
    wrong = subprocess.run(["openssl", "pkey", "-in", str(key), "-passin", "pass:nope", "-noout"],
                           capture_output=True)
    assert wrong.returncode != 0
    # the public key is the private key's
    derived = subprocess.run(["openssl", "pkey", "-in", str(key), "-passin", f"pass:{PASSWORD}", "-pubout"],
                             capture_output=True, text=True, check=True).stdout
    assert derived == pub.read_text()
    again = signer("key", "generate", "--output-key-prefix", str(tmp_path / "k" / "cosign"), check=False)
    assert "exists" in error_line(again)


def test_key_generate_needs_a_passphrase(pybuild, tmp_path):
    env = {k: v for k, v in pybuild.env.items() if k not in ("PYBUILD_KEY_PASSWORD", "COSIGN_PASSWORD")}
    proc = subprocess.run([PYBUILD, "key", "generate", "--output-key-prefix", str(tmp_path / "x")],
                          capture_output=True, env=env, stdin=subprocess.DEVNULL)
    assert "PYBUILD_KEY_PASSWORD" in error_line(proc)
    empty = pybuild("key", "generate", "--output-key-prefix", str(tmp_path / "y"), check=False,
                    env={"PYBUILD_KEY_PASSWORD": ""})
    assert "unencrypted" in error_line(empty)
    assert not (tmp_path / "x.key").exists() and not (tmp_path / "y.key").exists()


def on_terminal(argv: list[str], env: dict[str, str], answers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """Run ``argv`` on a new pseudo-terminal, answering each prompt when it appears; (exit status, output)."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.execve(argv[0], argv, env)
    output = b""
    pending = list(answers)
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if pending and pending[0][0] in output:
            os.write(fd, pending.pop(0)[1])
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output


def test_key_generate_asks_for_the_passphrase_on_a_terminal(pybuild, tmp_path):
    env = {k: v for k, v in pybuild.env.items() if k not in ("PYBUILD_KEY_PASSWORD", "COSIGN_PASSWORD")}
    prefix = tmp_path / "tty"
    code, out = on_terminal([PYBUILD, "key", "generate", "--output-key-prefix", str(prefix)], env,
                            [(b"Enter password for private key: ", b"typed-pass\n"),
                             (b"again: ", b"typed-pass\n")])
    assert code == 0, out
    assert b"typed-pass" not in out  # not echoed
    subprocess.run(["openssl", "pkey", "-in", f"{prefix}.key", "-passin", "pass:typed-pass", "-noout"], check=True)
    code, out = on_terminal([PYBUILD, "key", "generate", "--output-key-prefix", str(tmp_path / "bad")], env,
                            [(b"Enter password for private key: ", b"one\n"), (b"again: ", b"two\n")])
    assert code == 1 and b"do not match" in out and not (tmp_path / "bad.key").exists()


# ---- sign and verify -----------------------------------------------------------------

def test_sign_verify_roundtrip(any_registry, signer, busybox_image, keypair, tmp_path):
    """Every registry set-up (plain, TLS + basic auth, bearer tokens)."""
    reg = any_registry
    cli = use_registry(signer, reg, tmp_path / "docker")
    key, pub = keypair
    target = f"{reg.host}/signing/roundtrip:1"
    digest = push(cli, busybox_image, target)
    signed = cli("sign", "--key", str(key), target)
    assert digest in signed.stdout.decode() and f"sha256-{digest[7:]}.sig" in signed.stdout.decode()
    verified = cli("verify", "--key", str(pub), target)
    claim = json.loads(verified.stdout)[0]
    assert claim == {"critical": {"identity": {"docker-reference": f"{reg.host}/signing/roundtrip"},
                                  "image": {"docker-manifest-digest": digest},
                                  "type": "cosign container image signature"},
                     "optional": None}
    cli("verify", "--key", str(pub), f"{reg.host}/signing/roundtrip@{digest}")  # by digest too


def test_signature_format_verifies_with_openssl(plain_registry, signer, busybox_image, keypair, tmp_path):
    reg = plain_registry
    key, pub = keypair
    target = f"{reg.host}/signing/openssl:1"
    digest = push(signer, busybox_image, target)
    signer("sign", "--key", str(key), target)
    manifest = signature_manifest(reg, "signing/openssl", digest)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == SIMPLESIGNING
    payload = blob(reg, "signing/openssl", layer["digest"])
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "sig").write_bytes(base64.b64decode(layer["annotations"][ANNOTATION]))
    ok = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(tmp_path / "sig"),
                         str(tmp_path / "payload")], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout
    (tmp_path / "payload").write_bytes(payload.replace(b"cosign container", b"cosign container "[:-1] + b"!"))
    bad = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(tmp_path / "sig"),
                          str(tmp_path / "payload")], capture_output=True, text=True)
    assert bad.returncode != 0


def test_signature_made_by_openssl_verifies(plain_registry, signer, busybox_image, tmp_path):
    """The other direction: openssl makes the key and the signature of a cosign payload written
    by hand; pybuild verifies it (and refuses it under another key)."""
    reg = plain_registry
    target = f"{reg.host}/signing/by-openssl:1"
    digest = push(signer, busybox_image, target)
    key, pub = tmp_path / "ossl.key", tmp_path / "ossl.pub"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    payload = json.dumps({"critical": {"identity": {"docker-reference": f"{reg.host}/signing/by-openssl"},
                                       "image": {"docker-manifest-digest": digest},
                                       "type": "cosign container image signature"},
                          "optional": {"creator": "openssl"}}).encode()
    (tmp_path / "payload").write_bytes(payload)
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key), str(tmp_path / "payload")],
                               capture_output=True, check=True).stdout
    put_signature_manifest(reg, "signing/by-openssl", digest, [(payload, base64.b64encode(signature).decode())])
    out = signer("verify", "--key", str(pub), target)
    assert json.loads(out.stdout)[0]["optional"] == {"creator": "openssl"}
    _, other_pub = make_keys(signer, tmp_path / "other")
    assert "does not verify" in error_line(signer("verify", "--key", str(other_pub), target, check=False))


def test_signatures_accumulate(plain_registry, signer, busybox_image, tmp_path):
    reg = plain_registry
    key_a, pub_a = make_keys(signer, tmp_path / "a")
    key_b, pub_b = make_keys(signer, tmp_path / "b")
    _, pub_c = make_keys(signer, tmp_path / "c")
    target = f"{reg.host}/signing/accumulate:1"
    digest = push(signer, busybox_image, target)
    signer("sign", "--key", str(key_a), target)
    signer("sign", "--key", str(key_b), target)
    layers = signature_manifest(reg, "signing/accumulate", digest)["layers"]
    assert len(layers) == 2 and len({layer["annotations"][ANNOTATION] for layer in layers}) == 2
    for pub in (pub_a, pub_b):
        out = signer("verify", "--key", str(pub), target)
        assert b"1 of 2 signature(s) verified" in out.stderr
    wrong = signer("verify", "--key", str(pub_c), target, check=False)
    err = error_line(wrong)
    assert "signature 1: does not verify" in err and "signature 2: does not verify" in err


def test_cosign_format_private_key_signs(plain_registry, signer, busybox_image, tmp_path):
    key, pub = make_keys(signer, tmp_path / "ck", "cosign", "--format", "cosign")
    assert key.read_text().startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    target = f"{plain_registry.host}/signing/cosignkey:1"
    push(signer, busybox_image, target)
    signer("sign", "--key", str(key), target)
    signer("verify", "--key", str(pub), target)
    wrong = signer("sign", "--key", str(key), target, check=False, env={"PYBUILD_KEY_PASSWORD": "nope"})
    assert "wrong passphrase" in error_line(wrong)
    # cosign before 2.0 wrote the same envelope under another PEM type
    older = key.with_name("older.key")
    older.write_text(key.read_text().replace("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"))
    signer("sign", "--key", str(older), target)
    assert b"2 of 2 signature(s) verified" in signer("verify", "--key", str(pub), target).stderr


# ---- tampering -----------------------------------------------------------------------

@pytest.fixture
def signed(plain_registry, signer, busybox_image, keypair, busybox_rootfs, tmp_path):
    """A signed image ``signing/tamper-N:1`` and a second, different image pushed elsewhere."""
    reg = plain_registry
    repository = f"signing/tamper-{os.urandom(4).hex()}"
    target = f"{reg.host}/{repository}:1"
    digest = push(signer, busybox_image, target)
    signer("sign", "--key", str(keypair[0]), target)
    signer("verify", "--key", str(keypair[1]), target)
    other_dir = tmp_path / "other-rootfs"
    subprocess.run(["cp", "-a", str(busybox_rootfs), str(other_dir)], check=True)
    (other_dir / "evil").write_text("not what was signed\n")
    signer("import", str(other_dir), "evil:1")
    return reg, repository, target, digest


def test_tamper_retag_other_image_under_signed_tag(signed, signer, keypair):
    reg, repository, target, digest = signed
    evil = push(signer, "evil:1", target)
    assert evil != digest
    err = error_line(signer("verify", "--key", str(keypair[1]), target, check=False))
    assert f"{target} ({evil}) has no signatures" in err


def test_tamper_one_byte_of_payload(signed, signer, keypair):
    reg, repository, target, digest = signed
    [layer] = signature_manifest(reg, repository, digest)["layers"]
    payload = bytearray(blob(reg, repository, layer["digest"]))
    payload[payload.index(b"cosign container") + 1] ^= 0x20  # one byte, still valid JSON
    put_signature_manifest(reg, repository, digest, [(bytes(payload), layer["annotations"][ANNOTATION])])
    err = error_line(signer("verify", "--key", str(keypair[1]), target, check=False))
    assert "signature 1: does not verify with" in err and "payload was altered" in err


def test_tamper_signature_copied_to_another_image(signed, signer, keypair):
    reg, repository, target, digest = signed
    [layer] = signature_manifest(reg, repository, digest)["layers"]
    payload = blob(reg, repository, layer["digest"])
    evil_target = f"{reg.host}/{repository}:evil"
    evil = push(signer, "evil:1", evil_target)
    put_signature_manifest(reg, repository, evil, [(payload, layer["annotations"][ANNOTATION])])
    err = error_line(signer("verify", "--key", str(keypair[1]), evil_target, check=False))
    assert f"signs manifest {digest}, not {evil}" in err


def test_tamper_wrong_key(signed, signer, tmp_path):
    reg, repository, target, digest = signed
    _, other_pub = make_keys(signer, tmp_path / "other")
    err = error_line(signer("verify", "--key", str(other_pub), target, check=False))
    assert "signature 1: does not verify with" in err and str(other_pub) in err


def test_signature_for_another_repository_is_refused(signed, signer, keypair, busybox_image):
    """A valid signature whose payload names another repository does not count (cosign's claim check)."""
    reg, repository, target, digest = signed
    elsewhere = f"{reg.host}/{repository}-mirror:1"
    assert push(signer, busybox_image, elsewhere) == digest
    [layer] = signature_manifest(reg, repository, digest)["layers"]
    put_signature_manifest(reg, f"{repository}-mirror", digest,
                           [(blob(reg, repository, layer["digest"]), layer["annotations"][ANNOTATION])])
    err = error_line(signer("verify", "--key", str(keypair[1]), elsewhere, check=False))
    assert f"signed for {reg.host}/{repository}, not {reg.host}/{repository}-mirror" in err


def test_bad_key_files_are_one_line_errors(signed, signer, tmp_path, keypair):
    reg, repository, target, digest = signed
    missing = error_line(signer("verify", "--key", str(tmp_path / "nope.pub"), target, check=False))
    assert "does not exist" in missing
    private_as_public = error_line(signer("verify", "--key", str(keypair[0]), target, check=False))
    assert "not a PEM public key" in private_as_public


# ---- build --push --sign -------------------------------------------------------------

def test_build_push_sign(plain_registry, signer, busybox_image, keypair, tmp_path):
    reg = plain_registry
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built\n")
    target = f"{reg.host}/signing/built:1"
    out = signer("build", "--progress", "plain", "-t", target, "--push", "--sign", str(keypair[0]), str(ctx))
    assert b"signed " + target.encode() in out.stdout + out.stderr
    signer("verify", "--key", str(keypair[1]), target)
    # --sign without --push fails before building anything
    err = error_line(signer("build", "-t", target, "--sign", str(keypair[0]), str(ctx), check=False))
    assert "add --push" in err


class HostileRegistry:
    """A tiny registry on 127.0.0.1 that serves one image manifest and, under its .sig tag,
    whatever manifest the test wants (distribution itself refuses to store malformed ones)."""

    def __init__(self, signature_manifest: bytes):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from registry import oci

        image = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                            "config": {"mediaType": oci.OCI_CONFIG, "digest": "sha256:" + "1" * 64, "size": 2},
                            "layers": []}).encode()
        self.digest = oci.sha256_digest(image)
        routes = {"/v2/": (b"{}", "application/json"), "/v2/evil/manifests/1": (image, oci.OCI_MANIFEST),
                  f"/v2/evil/manifests/{self.digest}": (image, oci.OCI_MANIFEST),
                  f"/v2/evil/manifests/{self.digest.replace(':', '-')}.sig": (signature_manifest, oci.OCI_MANIFEST)}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                body, media_type = routes.get(self.path, (b'{"errors":[{"code":"NOT_FOUND"}]}', "application/json"))
                self.send_response(200 if self.path in routes else 404)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("layers", [
    [{"mediaType": SIMPLESIGNING, "digest": "sha256:" + "0" * 64, "size": 10, "annotations": ["not", "a", "map"]}],
    [{"mediaType": SIMPLESIGNING, "digest": "../../../v2/_catalog", "size": 10, "annotations": {ANNOTATION: "x"}}],
    ["not a descriptor"],
    [{"mediaType": SIMPLESIGNING, "digest": "sha256:" + "0" * 64, "size": 1 << 40, "annotations": {ANNOTATION: "x"}}],
])
def test_hostile_signature_manifest_is_a_clean_refusal(signer, keypair, layers):
    """A registry may serve anything under the .sig tag: each case is one line and exit 1."""
    from registry import oci

    raw = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                      "config": {"mediaType": oci.OCI_CONFIG, "digest": "sha256:" + "1" * 64, "size": 2},
                      "layers": layers}).encode()
    hostile = HostileRegistry(raw)
    try:
        proc = signer("verify", "--key", str(keypair[1]), f"{hostile.host}/evil:1", check=False)
    finally:
        hostile.close()
    err = error_line(proc)
    assert proc.returncode == 1 and len(err.strip().splitlines()) == 1, err
    assert "refusing it" in err
