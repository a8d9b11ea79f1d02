"""Multi-platform builds (issue 13): one build, one image per platform, an OCI index through every command."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from registry import oci

pytestmark = pytest.mark.slow

# the base per platform is picked with the automatic TARGETARCH arg (BuildKit's)
TWO_BASES = 'ARG TARGETARCH\nFROM base-$TARGETARCH\nRUN uname -m > /arch\nCMD ["cat", "/arch"]\n'


def _ctx(tmp_path: Path, dockerfile: str, name: str = "ctx") -> Path:
    ctx = tmp_path / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _index(root: Path, name: str) -> tuple[oci.Descriptor, dict]:
    from registry.store import Store

    store = Store(root)
    desc = store.resolve(name)
    return desc, store.read_json(desc.digest)


def _platforms(index: dict) -> list[str]:
    return ["/".join(e["platform"][k] for k in ("os", "architecture")) for e in index["manifests"]]


def build_multi(pybuild, tmp_path: Path, tag: str = "multi") -> str:
    ctx = _ctx(tmp_path, TWO_BASES, "ctx-" + tag)
    proc = pybuild("build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", "-t", tag, str(ctx))
    return proc.stdout.decode().strip()


def test_two_platforms_one_index(pybuild, root, two_bases, tmp_path):
    digest = build_multi(pybuild, tmp_path)
    desc, index = _index(root, "multi")
    assert desc.digest == digest and desc.media_type == oci.OCI_INDEX and index["mediaType"] == oci.OCI_INDEX
    assert _platforms(index) == ["linux/amd64", "linux/arm64"]
    from registry.store import Store

    store = Store(root)
    for entry in index["manifests"]:
        config = store.image_at(oci.Descriptor.from_json(entry)).config
        assert {"os": config["os"], "architecture": config["architecture"]} == entry["platform"]
    assert pybuild("run", "--rm", "--platform", "linux/amd64", "multi").stdout == b"x86_64\n"
    assert pybuild("run", "--rm", "--platform", "linux/arm64", "multi").stdout == b"aarch64\n"
    assert pybuild("run", "--rm", "multi").stdout == b"x86_64\n"  # the host's platform, no warning
    # one row in `images`, the index digest as its ID; no <none> rows for the per-platform images
    rows = [json.loads(line) for line in pybuild("images", "--format", "json").stdout.decode().splitlines()]
    multi = [r for r in rows if r["Repository"] == "multi"]
    assert [(r["ID"], r["Platforms"]) for r in multi] == [(digest, ["linux/amd64", "linux/arm64"])]
    assert not [r for r in rows if r["Repository"] == "<none>"]
    arm = json.loads(pybuild("inspect", "--platform", "linux/arm64", "multi").stdout)[0]
    assert (arm["Architecture"], arm["RepoTags"]) == ("arm64", ["multi:latest"])
    assert json.loads(pybuild("inspect", "multi").stdout)[0]["Architecture"] == "amd64"
    assert pybuild("fsck").returncode == 0
    # a rebuild is all cache hits and the same index
    assert build_multi(pybuild, tmp_path, "multi2") == digest


def test_from_selects_the_platform_of_an_index(pybuild, root, two_bases, tmp_path):
    build_multi(pybuild, tmp_path)
    ctx = _ctx(tmp_path, "FROM multi\nRUN cat /arch && uname -m\n", "from-index")
    proc = pybuild("build", "--progress", "plain", "--platform", "linux/arm64", "-t", "on-index", str(ctx))
    log = proc.stderr.decode()
    assert "InvalidBaseImagePlatform" not in log
    assert pybuild("run", "--rm", "on-index").stdout == b"aarch64\n"
    missing = pybuild("build", "--platform", "linux/s390x", str(ctx), check=False)
    assert missing.returncode != 0
    assert "no manifest for platform linux/s390x (available: linux/amd64, linux/arm64)" in missing.stderr.decode()


def test_save_oci_keeps_the_index_docker_archive_one_platform(pybuild, root, two_bases, tmp_path):
    digest = build_multi(pybuild, tmp_path)
    oci_tar, docker_tar = tmp_path / "multi-oci.tar", tmp_path / "multi-docker.tar"
    assert pybuild("save", "--format", "oci", "-o", str(oci_tar), "multi").stderr == b""
    with tarfile.open(oci_tar) as tar:
        top = json.loads(tar.extractfile("index.json").read())
        assert [m["digest"] for m in top["manifests"]] == [digest]
        index = json.loads(tar.extractfile("blobs/sha256/" + digest.split(":")[1]).read())
        assert _platforms(index) == ["linux/amd64", "linux/arm64"]
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{oci_tar}"], capture_output=True, check=True)
    assert _platforms(json.loads(raw.stdout)) == ["linux/amd64", "linux/arm64"]
    proc = pybuild("save", "--platform", "linux/arm64", "-o", str(docker_tar), "multi")
    assert proc.stderr.decode() == ("multi:latest is a multi-platform image; a docker-archive holds one platform: "
                                    "saved linux/arm64 (use --format oci to save every platform)\n")
    with tarfile.open(docker_tar) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert len(manifest) == 1 and manifest[0]["RepoTags"] == ["multi:latest"]
        config = json.loads(tar.extractfile(manifest[0]["Config"]).read())
        assert config["architecture"] == "arm64"
    # copy --all out of the store into an OCI layout keeps both platforms
    pybuild("copy", "--all", "store:multi", f"oci:{tmp_path / 'layout'}:multi")
    layout = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert [m["digest"] for m in layout["manifests"]] == [digest]


def test_push_index_then_skopeo_docker_and_pull_platform(pybuild, root, two_bases, tmp_path, plain_registry, docker,
                                                         registry_factory):
    digest = build_multi(pybuild, tmp_path)
    ref = f"{plain_registry.host}/platforms/multi:1"
    pushed = pybuild("push", "-q", "multi", ref).stdout.decode().strip()
    assert pushed == digest
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, check=True)
    assert oci.sha256_digest(raw.stdout) == digest
    assert _platforms(json.loads(raw.stdout)) == ["linux/amd64", "linux/arm64"]
    try:
        pull = subprocess.run(["docker", "pull", "--platform", "linux/arm64", ref], capture_output=True, text=True)
        assert pull.returncode == 0, pull.stderr
        out = subprocess.run(["docker", "run", "--rm", "--network", "none", ref], capture_output=True, text=True)
        assert out.stdout == "aarch64\n", out.stderr
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)
    # pull --platform into a fresh store picks one manifest; copy --all keeps the index
    fresh = type(pybuild)(tmp_path / "fresh")
    (tmp_path / "fresh").mkdir()
    fresh("pull", "-q", "--platform", "linux/arm64", "--insecure", ref)
    assert json.loads(fresh("inspect", ref).stdout)[0]["Architecture"] == "arm64"
    assert fresh("run", "--rm", "--platform", "linux/arm64", ref).stdout == b"aarch64\n"
    fresh("copy", "--all", "--insecure", f"docker://{ref}", "store:copied:all")
    desc, index = _index(tmp_path / "fresh", "copied:all")
    assert desc.digest == digest and _platforms(index) == ["linux/amd64", "linux/arm64"]
    # build --push of a two-platform build pushes the index under every -t
    pushed_ref = f"{plain_registry.host}/platforms/built:2"
    ctx = _ctx(tmp_path, TWO_BASES, "ctx-push")
    built = pybuild("build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", pushed_ref, "--push", str(ctx))
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{pushed_ref}"],
                         capture_output=True, check=True)
    assert oci.sha256_digest(raw.stdout) == built.stdout.decode().split()[-1]
    # registry to registry with --all: the index arrives whole
    other = registry_factory()
    fresh("copy", "--all", "--insecure", f"docker://{ref}", f"docker://{other.host}/copied/multi:1")
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{other.host}/copied/multi:1"],
                         capture_output=True, check=True)
    assert oci.sha256_digest(raw.stdout) == digest


def test_shared_build_stage_runs_once_for_two_platforms(pybuild, root, two_bases, tmp_path):
    """A ``--platform=$BUILDPLATFORM`` step both platforms need runs once (even with --no-cache)."""
    ctx = _ctx(tmp_path, "FROM --platform=$BUILDPLATFORM base-amd64 AS build\n"
                         "RUN head -c 16 /dev/urandom | md5sum > /token && uname -m\n"
                         "ARG TARGETARCH\nRUN echo $TARGETARCH > /for\n"
                         "FROM base-$TARGETARCH\nCOPY --from=build /token /for /\n")
    proc = pybuild("build", "--progress", "plain", "--no-cache", "--platform", "linux/amd64,linux/arm64",
                   "-t", "shared", str(ctx))
    log = proc.stderr.decode()
    steps = re.findall(r"^#(\d+) \[[^\]]*build 2/4\] RUN head", log, re.M)
    assert len(steps) == 2
    outcomes = [re.search(rf"^#{n} (CACHED|DONE)", log, re.M).group(1) for n in steps]
    assert sorted(outcomes) == ["CACHED", "DONE"], log
    tokens = {p: pybuild("run", "--rm", "--platform", p, "shared", "cat", "/token", "/for").stdout.decode()
              for p in ("linux/amd64", "linux/arm64")}
    assert tokens["linux/amd64"].splitlines()[0] == tokens["linux/arm64"].splitlines()[0]
    assert [t.splitlines()[1] for t in tokens.values()] == ["amd64", "arm64"]


def test_oci_archive_round_trip_keeps_the_index(pybuild, root, two_bases, tmp_path):
    digest = build_multi(pybuild, tmp_path)
    archive = tmp_path / "multi.tar"
    pybuild("save", "--format", "oci", "-o", str(archive), "multi")
    fresh = type(pybuild)(tmp_path / "fresh")
    (tmp_path / "fresh").mkdir()
    assert fresh("load", "-i", str(archive)).stdout == b"Loaded image: multi:latest\n"
    desc, index = _index(tmp_path / "fresh", "multi")
    assert desc.digest == digest and _platforms(index) == ["linux/amd64", "linux/arm64"]
    assert fresh("run", "--rm", "--platform", "linux/arm64", "multi").stdout == b"aarch64\n"
    fresh("copy", "--all", f"oci-archive:{archive}", "store:again:1")
    assert _index(tmp_path / "fresh", "again:1")[0].digest == digest
    assert fresh("fsck").returncode == 0
    # rmi of the index name, then prune, leaves nothing of it
    fresh("rmi", "multi", "again:1")
    fresh("prune")
    assert not any((tmp_path / "fresh" / "store" / "blobs" / "sha256").iterdir())


def _layout(path: Path, docs: list[dict], top: dict, tag: str) -> None:
    """A hand-made OCI layout: ``docs`` as blobs, ``top`` named ``tag`` in index.json."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for doc in docs + [top]:
        raw = oci.canonical_json(doc)
        (blobs / oci.sha256_digest(raw).split(":")[1]).write_bytes(raw)
    raw = oci.canonical_json(top)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": oci.OCI_INDEX, "digest": oci.sha256_digest(raw), "size": len(raw),
        "annotations": {oci.ANNOTATION_REF_NAME: tag}}]}))


def _desc(doc: dict, media_type: str, platform=None) -> dict:
    raw = oci.canonical_json(doc)
    out = {"mediaType": media_type, "digest": oci.sha256_digest(raw), "size": len(raw)}
    if platform is not None:
        out["platform"] = platform
    return out


def test_hostile_indexes_fail_with_one_line(pybuild, root, tmp_path):
    """A nested index, and platform fields that are not objects: one-line errors, nothing stored."""
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    manifest = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "layers": [],
                "config": _desc(config, oci.OCI_CONFIG)}
    inner = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
             "manifests": [_desc(manifest, oci.OCI_MANIFEST, {"os": "linux", "architecture": "amd64"})]}
    nested = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
              "manifests": [_desc(inner, oci.OCI_INDEX, {"os": "linux", "architecture": "amd64"})]}
    _layout(tmp_path / "nested", [config, manifest, inner], nested, "x")
    proc = pybuild("copy", "--all", f"oci:{tmp_path / 'nested'}:x", "store:nested:1", check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and err.count("\n") == 1 and "nested indexes are not supported" in err, err
    odd = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
           "manifests": [_desc(manifest, oci.OCI_MANIFEST, "linux/amd64"), "not-an-entry"]}
    _layout(tmp_path / "odd", [config, manifest], odd, "y")
    proc = pybuild("copy", f"oci:{tmp_path / 'odd'}:y", "store:odd:1", check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and err.count("\n") == 1
    assert "no manifest for platform linux/amd64 (available: unknown)" in err, err
    assert "nested" not in pybuild("images").stdout.decode() and "odd" not in pybuild("images").stdout.decode()


def test_index_entries_carry_variants(pybuild, root, tmp_path):
    """arm/v7 keeps its variant in the index entry and the config; arm64 has none (containerd's normal form)."""
    ctx = _ctx(tmp_path, 'FROM scratch\nARG TARGETPLATFORM\nCOPY Dockerfile /\nLABEL built-for="$TARGETPLATFORM"\n')
    pybuild("build", "-q", "--platform", "linux/arm/v7,linux/aarch64", "-t", "variants", str(ctx))
    _, index = _index(root, "variants")
    assert [e["platform"] for e in index["manifests"]] == [
        {"os": "linux", "architecture": "arm", "variant": "v7"}, {"os": "linux", "architecture": "arm64"}]
    arm = json.loads(pybuild("inspect", "--platform", "linux/arm", "variants").stdout)[0]
    assert (arm["Architecture"], arm["Variant"], arm["Config"]["Labels"]) == ("arm", "v7", {"built-for": "linux/arm/v7"})


def test_one_platform_failing_fails_the_build_and_tags_nothing(pybuild, root, two_bases, tmp_path):
    ctx = _ctx(tmp_path, 'ARG TARGETARCH\nFROM base-$TARGETARCH\nARG TARGETARCH\n'
                         'RUN if [ "$TARGETARCH" = arm64 ]; then exit 3; fi\n')
    proc = pybuild("build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", "-t", "half", str(ctx),
                   check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("pybuild: error: Dockerfile:4: RUN failed")
    assert err.strip().splitlines()[-1].endswith("returned a non-zero code: 3")
    assert "half" not in pybuild("images").stdout.decode()
    assert not list((root / "tmp").glob("build*"))


def test_copy_of_an_index_without_all_says_it_copies_one_platform(pybuild, two_bases, tmp_path):
    """issue 10: copying a multi-platform image without --all copies one platform and says so."""
    ctx = _ctx(tmp_path, TWO_BASES, "one-of-two")
    pybuild("build", "--platform", "linux/amd64,linux/arm64", "-t", "multi", str(ctx))
    proc = pybuild("copy", "store:multi", f"oci:{tmp_path / 'one'}:multi")
    assert proc.stderr.decode().splitlines()[-1] == (
        "store:multi is a multi-platform image: copied linux/amd64 only (its own manifest, not the index); "
        "use --all to copy every platform")
    layout = json.loads((tmp_path / "one" / "index.json").read_text())
    assert [m["mediaType"] for m in layout["manifests"]] == ["application/vnd.oci.image.manifest.v1+json"]
