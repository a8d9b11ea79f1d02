"""A build cache shared across CI runners (issue 10): two stores, one registry with htpasswd.

Runner A builds and exports its cache; runner B starts from an empty store and builds
the same project with ``--cache-from``.  Every RUN prints a marker to the build log,
and a cached step prints no output, so B's log shows exactly which RUN steps ran (A's
log, built the same way, shows the markers do appear when a step runs).  Bytes are
counted at the registry: its access log records each blob GET and its size.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import ssl
import urllib.request
from pathlib import Path

import pytest

from conftest import CLI
from registry_fixtures import PASSWORD, USER, Registry

pytestmark = pytest.mark.registry

MARKERS = ("RAN-deps", "RAN-build", "RAN-final")
DOCKERFILE = """\
FROM {base} AS builder
WORKDIR /src
COPY dep.txt .
RUN echo RAN-deps && head -c 2000000 /dev/urandom > /src/deps.bin
COPY app.txt .
RUN echo RAN-build && cat app.txt dep.txt > /out.txt && wc -c < deps.bin >> /out.txt
FROM {base}
ENV APP=/app
COPY --from=builder /out.txt /app/out.txt
RUN echo RAN-final && cp /app/out.txt /app/copy.txt
"""


def runner(tmp_path: Path, name: str, reg: Registry) -> CLI:
    """A CI runner: its own empty store, the registry's CA and a login."""
    (tmp_path / name).mkdir()
    cli = CLI(tmp_path / name / "root")
    (tmp_path / name / "root").mkdir()
    cli.env.update(reg.env)
    cli.env["DOCKER_CONFIG"] = str(tmp_path / name / "docker")
    cli("login", reg.host, "-u", USER, "--password-stdin", input=PASSWORD.encode())
    return cli


def project(path: Path, base: str) -> Path:
    path.mkdir()
    (path / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (path / "dep.txt").write_text("dependency v1\n")
    (path / "app.txt").write_text("app v1\n")
    return path


def printed(proc, marker: str) -> bool:
    """Whether a RUN printed ``marker`` (an output line, not the step's header)."""
    return re.search(rf"^#\d+ [\d.]+ {marker}$", proc.stderr.decode(errors="replace"), re.M) is not None


def ran(proc) -> list[str]:
    return [m for m in MARKERS if printed(proc, m)]


def blob_gets(reg: Registry, since: int) -> list[tuple[str, int]]:
    """(digest, bytes sent) of each blob GET the registry logged after line ``since``."""
    out = []
    for line in reg.log().splitlines()[since:]:
        match = re.search(r'"GET /v2/\S+/blobs/(sha256:[0-9a-f]{64}) HTTP/[\d.]+" (\d+) (\d+)', line)
        if match and match.group(2) in ("200", "206"):
            out.append((match.group(1), int(match.group(3))))
    return out


def log_lines(reg: Registry) -> int:
    return len(reg.log().splitlines())


@pytest.fixture
def ci(tls_registry: Registry, tmp_path: Path, busybox_rootfs: Path):
    """(registry, runner A, runner B, namespace, project dir of A, project dir of B)."""
    reg = tls_registry
    ns = f"{reg.host}/ci-{secrets.token_hex(4)}"
    a, b = runner(tmp_path, "a", reg), runner(tmp_path, "b", reg)
    a("import", str(busybox_rootfs), f"{ns}/base:1")
    a("push", f"{ns}/base:1")
    return reg, a, b, ns, project(tmp_path / "src-a", f"{ns}/base:1"), project(tmp_path / "src-b", f"{ns}/base:1")


def build(cli: CLI, context: Path, *args: str):
    return cli("build", "--progress", "plain", *args, str(context))


def image_id(proc) -> str:
    return proc.stdout.decode().split()[-1]


def manifest_digest(cli: CLI, name: str) -> str:
    return json.loads(cli("inspect", name).stdout)[0]["Descriptor"]["digest"]


def cache_blobs(reg: Registry, ref: str) -> dict[str, int]:
    """digest -> size of every layer the cache artifact at ``ref`` lists."""
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    ca = Path(reg.env["PYBUILD_CERTS_D"]) / reg.host / "ca.crt"
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(f"https://{reg.host}/v2/{repo}/manifests/{tag}", headers={
        "Authorization": f"Basic {auth}", "Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        doc = json.loads(resp.read())
    return {layer["digest"]: layer["size"] for layer in doc["layers"]}


def test_registry_cache_mode_max_runner_b_runs_nothing(ci):
    reg, a, b, ns, src_a, src_b = ci
    cache = f"{ns}/cache:main"
    out_a = build(a, src_a, "-t", f"{ns}/app:1", "--push", "--cache-to", f"type=registry,ref={cache},mode=max")
    assert ran(out_a) == list(MARKERS), out_a.stderr.decode()
    exported = cache_blobs(reg, cache)

    mark = log_lines(reg)
    out_b = build(b, src_b, "-t", f"{ns}/app:1", "--cache-from", f"type=registry,ref={cache}")
    log_b = out_b.stderr.decode()
    assert ran(out_b) == [], log_b
    assert image_id(out_b) == image_id(out_a)
    assert manifest_digest(b, f"{ns}/app:1") == manifest_digest(a, f"{ns}/app:1")
    fetched = blob_gets(reg, mark)
    # the builder stage's layers (deps.bin: 2 MB of random bytes) stay in the registry
    fetched_digests = {d for d, _ in fetched}
    builder_only = set(exported) - fetched_digests
    assert builder_only and max(exported[d] for d in builder_only) > 1_900_000, (exported, fetched)
    assert sum(n for _, n in fetched) < sum(exported.values())
    assert re.search(r"cache: fetched \d+ layers", log_b)

    # one source file changes on B: only the steps from its first user on run again
    (src_b / "app.txt").write_text("app v2\n")
    out_b2 = build(b, src_b, "-t", f"{ns}/app:2", "--cache-from", f"type=registry,ref={cache}")
    assert ran(out_b2) == ["RAN-build", "RAN-final"], out_b2.stderr.decode()
    out = b("run", "--rm", f"{ns}/app:2", "cat", "/app/copy.txt").stdout.decode()
    assert out == "app v2\ndependency v1\n2000000\n"


def test_inline_cache_and_cache_from_image(ci):
    reg, a, b, ns, src_a, src_b = ci
    image = f"{ns}/inline:1"
    out_a = build(a, src_a, "-t", image, "--push", "--cache-to", "type=inline")
    assert ran(out_a) == list(MARKERS)
    mark = log_lines(reg)
    out_b = build(b, src_b, "-t", image, "--cache-from", image, "--cache-to", "type=inline")
    assert ran(out_b) == [], out_b.stderr.decode()
    assert image_id(out_b) == image_id(out_a)
    assert manifest_digest(b, image) == manifest_digest(a, image)
    # B fetched the final image's layers (base + its own), nothing of the builder stage
    layers = json.loads(a("inspect", image).stdout)[0]
    assert len(blob_gets(reg, mark)) <= len(layers["RootFS"]["Layers"]) + 2  # + config and cache image config

    (src_b / "app.txt").write_text("app v2\n")
    out_b2 = build(b, src_b, "-t", f"{ns}/inline:2", "--cache-from", image)
    # an inline cache carries no builder-stage layers: the changed step needs the builder's rootfs,
    # so B warns and runs the builder steps below it too (a registry cache with mode=max does not)
    assert ran(out_b2) == list(MARKERS), out_b2.stderr.decode()
    assert "could not be fetched" in out_b2.stderr.decode() or "is in no cache source" in out_b2.stderr.decode()
    assert b("run", "--rm", f"{ns}/inline:2", "cat", "/app/copy.txt").stdout.decode().startswith("app v2\n")


def test_run_bind_mount_of_the_context_is_keyed_by_content(pybuild, busybox_image, tmp_path):
    """A RUN that reads a context file through a bind mount reruns when that file changes
    (the key holds the file's checksum, not its name: the same on every runner)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=bind,source=conf,target=/conf cat /conf > /seen\n")
    (ctx / "conf").write_text("one\n")
    pybuild("build", "-t", "bound:1", str(ctx))
    (ctx / "conf").write_text("two\n")
    pybuild("build", "-t", "bound:2", str(ctx))
    assert pybuild("run", "--rm", "bound:2", "cat", "/seen").stdout == b"two\n"


SINGLE = """\
FROM busybox
COPY a.txt /a.txt
RUN echo RAN-deps && head -c 300000 /dev/urandom > /blob
RUN echo RAN-build && cat /a.txt > /b.txt
"""


def local_project(tmp_path: Path) -> Path:
    ctx = tmp_path / "single"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(SINGLE)
    (ctx / "a.txt").write_text("a\n")
    return ctx


@pytest.fixture
def runner_b(pybuild: CLI, busybox_image: str, tmp_path: Path) -> CLI:
    """A second store holding the same busybox image as the first (copied, not re-imported)."""
    (tmp_path / "root-b").mkdir()
    cli = CLI(tmp_path / "root-b")
    pybuild("copy", f"store:{busybox_image}", f"oci:{tmp_path / 'base-layout'}:busybox")
    cli("copy", f"oci:{tmp_path / 'base-layout'}:busybox", f"store:{busybox_image}")
    return cli


def layout_manifest(layout: Path) -> dict:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    return json.loads((layout / "blobs" / "sha256" / digest).read_text())


def test_local_cache_layout_shared_between_stores(pybuild, busybox_image, runner_b, tmp_path):
    ctx, layout = local_project(tmp_path), tmp_path / "cache-dir"
    out_a = build(pybuild, ctx, "-t", "loc:1", "--cache-to", f"type=local,dest={layout}")
    assert ran(out_a) == ["RAN-deps", "RAN-build"]
    manifest = layout_manifest(layout)
    assert manifest["config"]["mediaType"] == "application/vnd.pybuild.cache.config.v1+json"
    assert (layout / "oci-layout").exists() and len(manifest["layers"]) == 3
    out_b = build(runner_b, ctx, "-t", "loc:1", "--cache-from", f"type=local,src={layout}")
    assert ran(out_b) == [], out_b.stderr.decode()
    assert image_id(out_b) == image_id(out_a)
    assert runner_b("run", "--rm", "loc:1", "cat", "/b.txt").stdout == b"a\n"


def test_lost_cache_blob_warns_and_runs_the_step(pybuild, busybox_image, runner_b, tmp_path):
    ctx, layout = local_project(tmp_path), tmp_path / "cache-dir"
    build(pybuild, ctx, "-t", "lost:1", "--cache-to", f"type=local,dest={layout}")
    big = max(layout_manifest(layout)["layers"], key=lambda d: d["size"])  # the RUN-deps layer
    (layout / "blobs" / "sha256" / big["digest"].split(":")[1]).unlink()
    out_b = build(runner_b, ctx, "-t", "lost:1", "--cache-from", f"type=local,src={layout}")
    log = out_b.stderr.decode()
    assert ran(out_b) == ["RAN-deps"], log
    assert re.search(r"\[Warning\] cached layer sha256:\w+ from .* could not be fetched", log), log
    assert runner_b("run", "--rm", "lost:1", "cat", "/b.txt").stdout == b"a\n"


def test_old_or_missing_cache_is_a_warning(pybuild, busybox_image, runner_b, tmp_path):
    ctx, layout = local_project(tmp_path), tmp_path / "cache-dir"
    build(pybuild, ctx, "-t", "old:1", "--cache-to", f"type=local,dest={layout}")
    manifest = layout_manifest(layout)
    config = layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]
    doc = json.loads(config.read_text())
    doc["format"] = "pybuild.cache.v0"
    config.write_text(json.dumps(doc))  # (the digest no longer matches either: also refused)
    out = build(runner_b, ctx, "-t", "old:1", "--cache-from", f"type=local,src={layout}",
                "--cache-from", f"type=local,src={tmp_path / 'never-written'}")
    log = out.stderr.decode()
    assert ran(out) == ["RAN-deps", "RAN-build"]
    assert log.count("[Warning] cache type=local") == 2, log
    assert "building without it" in log and "Traceback" not in log


def cache_config(layout: Path) -> dict:
    digest = layout_manifest(layout)["config"]["digest"].split(":")[1]
    return json.loads((layout / "blobs" / "sha256" / digest).read_text())


def test_mode_min_and_max_and_compression(pybuild, busybox_image, tmp_path):
    ctx = project(tmp_path / "multi", "busybox")
    build(pybuild, ctx, "-t", "modes:1", "--cache-to", f"type=local,dest={tmp_path / 'min'}",
          "--cache-to", f"type=local,dest={tmp_path / 'max'},mode=max,compression=zstd")
    small, full = cache_config(tmp_path / "min"), cache_config(tmp_path / "max")
    # the final stage has COPY --from and RUN; the builder stage WORKDIR, COPY, RUN, COPY, RUN
    assert len(small["records"]) == 2 and len(full["records"]) == 7
    assert {r["key"] for r in small["records"]} < {r["key"] for r in full["records"]}
    layers = layout_manifest(tmp_path / "max")["layers"]
    assert layers and all(d["mediaType"].endswith("+zstd") for d in layers)
    out = pybuild("build", "--compression", "gzip", "--cache-to", "type=inline,compression=zstd", str(ctx),
                  check=False)
    assert out.returncode != 0 and out.stderr.decode().count("\n") == 1, out.stderr
    assert b"conflicts with --cache-to compression=zstd" in out.stderr
    bad = pybuild("build", "--cache-to", "type=s3,bucket=x", str(ctx), check=False)
    assert bad.returncode != 0 and b"type must be registry, local or inline" in bad.stderr


MOUNTS = """\
FROM busybox
COPY app.txt /app.txt
RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs \\
    if [ -f /var/cache/pkgs/download.bin ]; then echo PKG-CACHE-HIT; \\
    else echo PKG-CACHE-MISS; head -c 50000 /dev/urandom > /var/cache/pkgs/download.bin; fi; \\
    md5sum /var/cache/pkgs/download.bin | cut -c1-32 > /pkg.md5; cp /app.txt /installed.txt
"""


def layer_names(cli: CLI, image: str) -> list[str]:
    """Every path in every layer of ``image`` (read from the store's blobs)."""
    import tarfile  # noqa: PLC0415
    info = json.loads(cli("inspect", image).stdout)[0]
    blobs = Path(cli.root) / "store" / "blobs" / "sha256"
    manifest = json.loads((blobs / info["Descriptor"]["digest"].split(":")[1]).read_text())
    names = []
    for layer in manifest["layers"]:
        with tarfile.open(blobs / layer["digest"].split(":")[1]) as tar:
            names += tar.getnames()
    return names


def test_cache_mounts_travel_opt_in(pybuild, busybox_image, runner_b, tmp_path):
    ctx, layout = tmp_path / "mounts", tmp_path / "cache-dir"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(MOUNTS)
    (ctx / "app.txt").write_text("v1\n")
    out_a = build(pybuild, ctx, "-t", "pkgs:1", "--cache-to", f"type=local,dest={layout},cache-mounts=true")
    assert printed(out_a, "PKG-CACHE-MISS")
    md5_a = pybuild("run", "--rm", "pkgs:1", "cat", "/pkg.md5").stdout

    (ctx / "app.txt").write_text("v2\n")  # B's RUN must run; its package cache comes from A
    out_b = build(runner_b, ctx, "-t", "pkgs:2", "--cache-from", f"type=local,src={layout}")
    assert printed(out_b, "PKG-CACHE-HIT") and not printed(out_b, "PKG-CACHE-MISS"), out_b.stderr.decode()
    assert runner_b("run", "--rm", "pkgs:2", "cat", "/pkg.md5").stdout == md5_a
    for cli, image in ((pybuild, "pkgs:1"), (runner_b, "pkgs:2")):
        names = layer_names(cli, image)
        assert "installed.txt" in names and not any("download.bin" in n or "var/cache/pkgs" in n for n in names)

    # without the opt-in the mount does not travel
    layout2 = tmp_path / "no-mounts"
    build(pybuild, ctx, "--cache-to", f"type=local,dest={layout2}")
    assert not any(d.get("annotations") for d in layout_manifest(layout2)["layers"])
    (tmp_path / "root-c").mkdir()
    c = CLI(tmp_path / "root-c")
    runner_b("copy", "store:busybox:latest", f"oci:{tmp_path / 'base-c'}:busybox")
    c("copy", f"oci:{tmp_path / 'base-c'}:busybox", "store:busybox:latest")
    (ctx / "app.txt").write_text("v3\n")
    out_c = build(c, ctx, "--cache-from", f"type=local,src={layout2}")
    assert printed(out_c, "PKG-CACHE-MISS") and not printed(out_c, "PKG-CACHE-HIT")


def test_malformed_cache_records_are_skipped_not_fatal():
    """A hostile or damaged cache config cannot crash the executor: bad records are dropped."""
    from builder.build.cache_remote import CacheFormatError, decode_records

    good = {"key": "a" * 64, "created": "2020-01-01T00:00:00Z", "layer": None}
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "1" * 64, "size": 9}
    doc = {"format": "pybuild.cache.v1", "records": [
        good, {"key": "b" * 64, "created": "x", "layer": layer},  # no diff_id
        {"key": "short", "created": "x", "layer": None}, {"key": "c" * 64, "created": 5, "layer": None},
        {"key": "d" * 64, "created": "x", "layer": {"digest": 7}, "diff_id": "sha256:" + "2" * 64}, "junk"],
        "mounts": [{"id": "m", "blob": "junk"}]}
    assert decode_records(doc, "here") == ([good], [])
    with pytest.raises(CacheFormatError):
        decode_records({"format": "pybuild.cache.v0", "records": []}, "here")


def test_ci_examples_use_only_flags_pybuild_accepts(pybuild):
    """examples/ci: every option the workflows pass to a pybuild command exists in its --help."""
    repo = Path(__file__).resolve().parent.parent
    text = "\n".join(p.read_text() for p in sorted((repo / "examples" / "ci").glob("*.yml")))
    joined = re.sub(r"\\\n\s*", " ", text)  # shell line continuations
    seen = 0
    for command, rest in re.findall(r"pybuild (build|run|push|login|inspect) ([^\n]*)", joined):
        helptext = pybuild(command, "--help").stdout.decode()
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", rest):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}\b", helptext), (command, flag)
            seen += 1
    assert seen >= 10


PARALLEL = """\
FROM busybox AS a
RUN echo RAN-a1 && head -c 300000 /dev/urandom > /x
COPY a.txt /a.txt
RUN echo RAN-a2 && cat /a.txt > /a.out
FROM busybox AS b
RUN echo RAN-b && echo b > /b.out
FROM busybox
COPY --from=a /a.out /a.out
COPY --from=b /b.out /b.out
"""


def test_lost_blob_in_a_parallel_stage_restarts_cleanly(pybuild, busybox_image, runner_b, tmp_path):
    """Stages a and b build at once; a's cached first layer is lost and its next step needs it."""
    ctx, layout = tmp_path / "par", tmp_path / "cache-dir"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(PARALLEL)
    (ctx / "a.txt").write_text("1\n")
    build(pybuild, ctx, "--cache-to", f"type=local,dest={layout},mode=max")
    big = max(layout_manifest(layout)["layers"], key=lambda d: d["size"])  # RUN-a1's /x
    (layout / "blobs" / "sha256" / big["digest"].split(":")[1]).unlink()
    (ctx / "a.txt").write_text("2\n")
    out = build(runner_b, ctx, "-t", "par:1", "--cache-from", f"type=local,src={layout}")
    assert printed(out, "RAN-a1") and printed(out, "RAN-a2") and "could not be fetched" in out.stderr.decode()
    assert runner_b("run", "--rm", "par:1", "cat", "/a.out", "/b.out").stdout == b"2\nb\n"


def test_builder_base_is_not_downloaded_when_its_steps_hit(ci, busybox_rootfs, tmp_path):
    """The builder stage's base (a big image of its own) is read by manifest and config only."""
    reg, a, b, ns, _, _ = ci
    big = tmp_path / "bigbase"
    shutil.copytree(busybox_rootfs, big, symlinks=True)
    (big / "toolchain.bin").write_bytes(secrets.token_bytes(3_000_000))
    a("import", str(big), f"{ns}/toolchain:1")
    a("push", f"{ns}/toolchain:1")
    ctx = tmp_path / "two-bases"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {ns}/toolchain:1 AS build\nRUN echo RAN-build && wc -c < /toolchain.bin > /out\n"
                                    f"FROM {ns}/base:1\nCOPY --from=build /out /out\n")
    cache = f"{ns}/cache:bases"
    out_a = build(a, ctx, "-t", f"{ns}/twobase:1", "--cache-to", f"type=registry,ref={cache},mode=max")
    assert printed(out_a, "RAN-build")
    toolchain = json.loads(a("inspect", f"{ns}/toolchain:1").stdout)[0]
    blobs = Path(a.root) / "store" / "blobs" / "sha256"
    big_layers = {d["digest"] for d in json.loads(
        (blobs / toolchain["Descriptor"]["digest"].split(":")[1]).read_text())["layers"]}
    mark = log_lines(reg)
    out_b = build(b, ctx, "-t", f"{ns}/twobase:1", "--cache-from", f"type=registry,ref={cache}")
    assert not printed(out_b, "RAN-build") and image_id(out_b) == image_id(out_a)
    fetched = {d for d, _ in blob_gets(reg, mark)}
    assert fetched and not fetched & big_layers, (fetched, big_layers)
    assert b("run", "--rm", f"{ns}/twobase:1", "cat", "/out").stdout == b"3000000\n"


def test_cache_from_an_image_in_the_local_store(pybuild, busybox_image, tmp_path):
    """As docker's legacy builder: --cache-from IMAGE reads a local image's (inline) cache."""
    ctx = local_project(tmp_path)
    out = build(pybuild, ctx, "-t", "inl:1", "--cache-to", "type=inline")
    assert ran(out) == ["RAN-deps", "RAN-build"]
    shutil.rmtree(Path(pybuild.root) / "cache" / "steps")  # the local records are gone, the image stays
    again = build(pybuild, ctx, "-t", "inl:2", "--cache-from", "inl:1", "--cache-to", "type=inline")
    assert ran(again) == [] and image_id(again) == image_id(out)
    build(pybuild, ctx, "-t", "plain:1")  # no inline cache in this one
    shutil.rmtree(Path(pybuild.root) / "cache" / "steps")
    none = build(pybuild, ctx, "--cache-from", "plain:1")
    assert ran(none) == ["RAN-deps", "RAN-build"] and "has no inline cache" in none.stderr.decode()


def test_unreachable_or_unauthorized_cache_is_a_warning(pybuild, busybox_image, tls_registry, tmp_path):
    """No login for the cache's registry, or nothing listening: the build runs without the cache."""
    from registry_fixtures import free_port  # noqa: PLC0415

    ctx = local_project(tmp_path)
    pybuild.env.update(tls_registry.env)
    pybuild.env["DOCKER_CONFIG"] = str(tmp_path / "no-login")
    out = build(pybuild, ctx, "--cache-from", f"type=registry,ref={tls_registry.host}/private/cache:main",
                "--cache-from", f"type=registry,ref=127.0.0.1:{free_port()}/nothing/cache:main")
    log = out.stderr.decode()
    assert ran(out) == ["RAN-deps", "RAN-build"]
    assert log.count("[Warning] cache type=registry") == 2 and "Traceback" not in log, log


def test_exporting_to_another_repository_mounts_cached_layers(ci):
    """B imports A's cache and exports to a branch cache in another repository of the same
    registry: the layers B never needed are mounted across repositories, not downloaded."""
    reg, a, b, ns, src_a, src_b = ci
    main_cache, branch_cache = f"{ns}/cache:main", f"{ns}/branch-cache:pr-1"
    build(a, src_a, "--cache-to", f"type=registry,ref={main_cache},mode=max")
    exported = cache_blobs(reg, main_cache)
    mark = log_lines(reg)
    out = build(b, src_b, "--cache-from", f"type=registry,ref={main_cache}",
                "--cache-to", f"type=registry,ref={branch_cache},mode=max")
    assert ran(out) == []
    assert cache_blobs(reg, branch_cache) == exported
    fetched = {d for d, _ in blob_gets(reg, mark)}
    builder_only = {d for d, size in exported.items() if size > 1_900_000}
    assert builder_only and not builder_only & fetched
    mounts = [line for line in reg.log().splitlines()[mark:] if re.search(r'"POST /v2/\S+\?\S*mount=', line)]
    assert mounts, "cached layers were mounted from the main cache's repository"
