"""``build --sbom --provenance``: in-toto attestations in an attestation manifest beside the image,
as BuildKit lays them out; ``inspect --attestations`` reads them from the store or a registry."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from conftest import CLI
from runner_helpers import needs_root
from test_sbom import validate_spdx
from test_signing import keypair, signer  # noqa: F401 (fixtures)

SECRET_VALUE = "npm_Sup3rS3cretValue"
SECRET_FILE_TEXT = "file-secret-never-in-attestations"
DOCKERFILE = """\
FROM busybox
ARG NPM_TOKEN
ARG VERSION
RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null; echo "$VERSION" > /version
"""


def build(cli: CLI, tmp_path: Path, *extra: str, tag: str = "attested:1") -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    secret = tmp_path / "token.txt"
    secret.write_text(SECRET_FILE_TEXT)
    cli("build", "-q", "-t", tag, "--build-arg", f"NPM_TOKEN={SECRET_VALUE}", "--build-arg", "VERSION=1.2.3",
        "--secret", f"id=token,src={secret}", *extra, str(ctx))
    return ctx


def attestations(cli: CLI, name: str) -> dict[str, dict]:
    found = json.loads(cli("inspect", "--attestations", name).stdout)
    return {a["predicateType"]: a for a in found}


def inspect(cli: CLI, name: str) -> dict:
    return json.loads(cli("inspect", name).stdout)[0]


def test_build_attaches_sbom_and_provenance(pybuild, root, busybox_image, tmp_path):
    ctx = build(pybuild, tmp_path, "--sbom", "--provenance")
    image_digest = inspect(pybuild, "attested:1")["Descriptor"]["digest"]
    assert inspect(pybuild, "attested:1")["RepoTags"] == ["attested:1"]
    # the tag names an index: the image with its platform, the attestation manifest for unknown/unknown
    index_entry = next(m for m in json.loads((root / "store/index.json").read_text())["manifests"]
                       if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == "attested:1")
    index = json.loads((root / "store/blobs/sha256" / index_entry["digest"][7:]).read_bytes())
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    image_entry, att_entry = index["manifests"]
    assert image_entry["digest"] == image_digest and image_entry["platform"]["os"] == "linux"
    assert att_entry["platform"] == {"architecture": "unknown", "os": "unknown"}
    assert att_entry["annotations"] == {"vnd.docker.reference.type": "attestation-manifest",
                                        "vnd.docker.reference.digest": image_digest}
    att_manifest = json.loads((root / "store/blobs/sha256" / att_entry["digest"][7:]).read_bytes())
    assert {layer["mediaType"] for layer in att_manifest["layers"]} == {"application/vnd.in-toto+json"}
    assert sorted(layer["annotations"]["in-toto.io/predicate-type"] for layer in att_manifest["layers"]) == [
        "https://slsa.dev/provenance/v1", "https://spdx.dev/Document"]

    found = attestations(pybuild, "attested:1")
    for item in found.values():
        statement = item["statement"]
        assert statement["_type"] == "https://in-toto.io/Statement/v0.1"
        assert statement["subject"][0]["digest"] == {"sha256": image_digest[7:]}
    sbom = found["https://spdx.dev/Document"]["statement"]["predicate"]
    validate_spdx(sbom, tmp_path)
    provenance = found["https://slsa.dev/provenance/v1"]["statement"]["predicate"]
    params = provenance["buildDefinition"]["externalParameters"]
    dockerfile_sha = hashlib.sha256((ctx / "Dockerfile").read_bytes()).hexdigest()
    assert params["dockerfile"]["digest"] == {"sha256": dockerfile_sha}
    assert params["args"] == {"NPM_TOKEN": "<redacted>", "VERSION": "1.2.3"}
    assert params["secrets"] == [{"id": "token"}]
    base_digest = inspect(pybuild, busybox_image)["Descriptor"]["digest"]
    deps = provenance["buildDefinition"]["resolvedDependencies"]
    assert {"uri": "pkg:docker/busybox", "digest": {"sha256": base_digest[7:]},
            "annotations": {"role": "base-image"}} in deps
    assert {"sha256": dockerfile_sha} in [d["digest"] for d in deps if d["annotations"]["role"] == "dockerfile"]
    assert provenance["runDetails"]["builder"]["id"]
    assert provenance["runDetails"]["metadata"]["startedOn"] <= provenance["runDetails"]["metadata"]["finishedOn"]
    # secrets: neither the redacted arg value nor the secret file's path or content is in any attestation
    for layer in att_manifest["layers"]:
        data = (root / "store/blobs/sha256" / layer["digest"][7:]).read_bytes()
        assert SECRET_VALUE.encode() not in data and SECRET_FILE_TEXT.encode() not in data
        assert str(tmp_path).encode() not in data


def test_attestations_are_opt_in_and_images_without_them_have_none(pybuild, busybox_image, tmp_path):
    build(pybuild, tmp_path)
    assert json.loads(pybuild("inspect", "--attestations", "attested:1").stdout) == []
    build(pybuild, tmp_path, "--sbom", tag="attested:2")
    assert list(attestations(pybuild, "attested:2")) == ["https://spdx.dev/Document"]


def test_attested_images_by_id_rmi_prune(pybuild, root, busybox_image, tmp_path):
    """An index in the store is one image to the image commands: found by its ID, one <none>
    entry when untagged, removed by rmi, its attestations pruned after, fsck clean."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo untagged > /u\n")
    image_id = pybuild("build", "-q", "--sbom", str(ctx)).stdout.decode().strip()
    listed = [line for line in pybuild("images").stdout.decode().splitlines() if image_id[7:19] in line]
    assert len(listed) == 1 and "<none>" in listed[0]
    assert inspect(pybuild, image_id[7:19])["Id"] == image_id
    assert list(attestations(pybuild, image_id)) == ["https://spdx.dev/Document"]
    pybuild("rmi", image_id)
    assert image_id[7:19] not in pybuild("images").stdout.decode()
    before = set((root / "store/blobs/sha256").iterdir())
    pybuild("prune")
    assert len(set((root / "store/blobs/sha256").iterdir())) < len(before)
    assert b"store clean" in pybuild("fsck").stdout
    entries = json.loads((root / "store/index.json").read_text())["manifests"]
    assert [(m.get("annotations") or {}).get("org.opencontainers.image.ref.name") for m in entries] == ["busybox:latest"]


@needs_root
def test_image_with_attestations_runs(pybuild, busybox_image, tmp_path):
    build(pybuild, tmp_path, "--sbom", "--provenance")
    assert pybuild("run", "--rm", "attested:1", "cat", "/version").stdout == b"1.2.3\n"


@pytest.mark.registry
def test_push_carries_attestations_and_signature_covers_them(plain_registry, signer, busybox_image, keypair,
                                                            tmp_path):
    reg = plain_registry
    target = f"{reg.host}/attest/app:1"
    build(signer, tmp_path, "--sbom", "--provenance", "--push", "--sign", str(keypair[0]), tag=target)
    local = attestations(signer, target)
    other = CLI(tmp_path / "other")
    remote = attestations(other, f"docker://{target}")
    assert remote == local and len(remote) == 2
    verified = signer("verify", "--key", str(keypair[1]), target)
    index_digest = json.loads(verified.stdout)[0]["critical"]["image"]["docker-manifest-digest"]
    # an independent OCI reader: skopeo sees the index, copies all of it, and the in-toto layers come along
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{target}"],
                         capture_output=True, check=True).stdout
    assert hashlib.sha256(raw).hexdigest() == index_digest[7:]
    assert json.loads(raw)["manifests"][1]["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
    layout = tmp_path / "oci-copy"
    subprocess.run(["skopeo", "copy", "--all", "--src-tls-verify=false", f"docker://{target}", f"oci:{layout}:app"],
                   capture_output=True, check=True)
    blobs = {p.name for p in (layout / "blobs/sha256").iterdir()}
    for item in remote.values():
        data = json.dumps(item["statement"], indent=2).encode()
        assert hashlib.sha256(data).hexdigest() in blobs
    # a plain pull takes the image for this platform and runs nothing else
    other("pull", target)
    assert inspect(other, target)["Descriptor"]["digest"] == remote["https://spdx.dev/Document"]["image"]


# ---- the Debian example: the SBOM against dpkg inside the image ---------------------------

@pytest.fixture(scope="session")
def debian_rootfs(tmp_path_factory) -> Path:
    """``debootstrap --variant=minbase bookworm`` (what examples/make-bases.sh does; needs the Debian
    mirror).  ``PYBUILD_TEST_DEBIAN_ROOTFS`` may name such a rootfs made earlier, to save the minutes."""
    import os
    import shutil

    if os.environ.get("PYBUILD_TEST_DEBIAN_ROOTFS"):
        return Path(os.environ["PYBUILD_TEST_DEBIAN_ROOTFS"])
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (scripts/setup.sh installs it)")
    target = tmp_path_factory.mktemp("debian") / "rootfs"
    proc = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(target), "http://deb.debian.org/debian"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return target


DPKG_FORMAT = "${db:Status-Abbrev}|${Package}|${Version}|${Architecture}\\n"


@pytest.mark.slow
@needs_root
def test_debian_example_sbom_lists_what_dpkg_lists_inside(pybuild, debian_rootfs, tmp_path):
    from conftest import REPO

    pybuild("import", str(debian_rootfs), "debian:bookworm")
    pybuild("build", "-q", "--sbom", "--provenance", "-t", "cowsay", str(REPO / "examples" / "debian-apt"))
    found = attestations(pybuild, "cowsay")
    sbom = found["https://spdx.dev/Document"]["statement"]["predicate"]
    listed = sorted((p["name"], p["versionInfo"], p["externalRefs"][0]["referenceLocator"].split("arch=")[1])
                    for p in sbom["packages"] if p["SPDXID"] != "SPDXRef-image")
    out = pybuild("run", "--rm", "cowsay", "dpkg-query", "-W", "-f", DPKG_FORMAT).stdout.decode()
    inside = sorted(tuple(line.split("|")[1:]) for line in out.splitlines() if line.startswith("ii"))
    assert listed == inside and any(name == "cowsay" for name, _, _ in listed)
    dpkg_l = pybuild("run", "--rm", "cowsay", "dpkg", "-l").stdout.decode()
    assert len([line for line in dpkg_l.splitlines() if line.startswith("ii ")]) == len(listed)
    validate_spdx(sbom, tmp_path)
    licensed = [p for p in sbom["packages"] if p["licenseDeclared"] != "NOASSERTION"]
    assert len(licensed) > len(listed) // 2  # Debian's machine-readable copyright files
    provenance = found["https://slsa.dev/provenance/v1"]["statement"]["predicate"]
    base = inspect(pybuild, "debian:bookworm")["Descriptor"]["digest"]
    assert {"sha256": base[7:]} in [d["digest"] for d in provenance["buildDefinition"]["resolvedDependencies"]]
