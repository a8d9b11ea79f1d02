"""Build flags CI scripts pass (issue 10): --pull, -o/--output, --metadata-file.

docker 20.10's legacy builder has ``--pull`` but not ``-o`` (a BuildKit feature); the
outputs are checked against what buildx documents and, for ``type=docker``, by loading
the archive into docker and running it.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import CLI
from registry_fixtures import PASSWORD, USER, Registry, free_port

DOCKERFILE = "FROM busybox\nRUN echo hello > /hello && mkdir -p /out && echo x > /out/x\n"


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    path = tmp_path / "ctx"
    path.mkdir()
    (path / "Dockerfile").write_text(DOCKERFILE)
    return path


def login(cli: CLI, reg: Registry, config: Path) -> CLI:
    cli.env.update(reg.env)
    cli.env["DOCKER_CONFIG"] = str(config)
    cli("login", reg.host, "-u", USER, "--password-stdin", input=PASSWORD.encode())
    return cli


def versioned_rootfs(busybox_rootfs: Path, dest: Path, version: str) -> Path:
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    (dest / "etc" / "version").write_text(version)
    return dest


def test_pull_checks_the_registry_for_a_newer_base(pybuild, tls_registry, busybox_rootfs, tmp_path):
    reg = tls_registry
    base = f"{reg.host}/pull-{secrets.token_hex(4)}/base:1"
    a = login(pybuild, reg, tmp_path / "docker-a")
    (tmp_path / "root-c").mkdir()
    c = login(CLI(tmp_path / "root-c"), reg, tmp_path / "docker-c")
    a("import", str(versioned_rootfs(busybox_rootfs, tmp_path / "v1", "v1\n")), base)
    a("push", base)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN cp /etc/version /seen\n")
    a("build", "-t", "pulled:1", str(ctx))
    c("import", str(versioned_rootfs(busybox_rootfs, tmp_path / "v2", "v2\n")), base)
    c("push", base)  # the registry's base:1 is now newer than runner A's

    a("build", "-t", "pulled:2", str(ctx))
    assert a("run", "--rm", "pulled:2", "cat", "/seen").stdout == b"v1\n"
    a("build", "--pull=false", "-t", "pulled:3", str(ctx))
    assert a("run", "--rm", "pulled:3", "cat", "/seen").stdout == b"v1\n"
    out = a("build", "-t", "pulled:4", "--pull", str(ctx))  # a bare --pull takes no value
    assert a("run", "--rm", "pulled:4", "cat", "/seen").stdout == b"v2\n"
    assert f"pulling {base}".encode() in out.stderr
    bad = a("build", "--pull=maybe", str(ctx), check=False)
    assert bad.returncode != 0 and b"--pull" in bad.stderr and bad.stderr.count(b"\n") == 1


def test_pull_of_an_image_no_registry_has_fails(pybuild, busybox_image, tmp_path):
    """As docker: with --pull, a base only the store has is an error (nothing listens on the port)."""
    name = f"127.0.0.1:{free_port()}/local-only/busybox:1"
    pybuild("tag", busybox_image, name)
    ctx = tmp_path / "ctx-local"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {name}\nRUN true\n")
    pybuild("build", str(ctx))
    out = pybuild("build", "--pull", str(ctx), check=False)
    assert out.returncode != 0 and f"pulling base image {name!r} failed".encode() in out.stderr, out.stderr
    assert out.stderr.count(b"pybuild: error") == 1 and b"Traceback" not in out.stderr


def test_output_local_and_shorthand(pybuild, busybox_image, ctx, tmp_path):
    pybuild("build", "-o", f"type=local,dest={tmp_path / 'files'}", str(ctx))
    assert (tmp_path / "files" / "hello").read_text() == "hello\n"
    assert (tmp_path / "files" / "out" / "x").read_text() == "x\n"
    assert (tmp_path / "files" / "bin" / "busybox").is_file()
    pybuild("build", "-o", str(tmp_path / "short"), str(ctx))
    assert (tmp_path / "short" / "hello").read_text() == "hello\n"


def test_output_tar_to_stdout_and_file(pybuild, busybox_image, ctx, tmp_path):
    out = pybuild("build", "-q", "-o", "type=tar,dest=-", str(ctx))
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        names = tar.getnames()
        assert tar.extractfile("hello").read() == b"hello\n"
    assert "out/x" in names and "bin/busybox" in names and not any(n.startswith(("/", "./")) for n in names)
    pybuild("build", "-o", f"type=tar,dest={tmp_path / 'fs.tar'}", str(ctx))
    with tarfile.open(tmp_path / "fs.tar") as tar:
        assert sorted(tar.getnames()) == sorted(names)


def test_output_oci_archive_loads_elsewhere(pybuild, busybox_image, ctx, tmp_path):
    pybuild("build", "-t", "ociout:1", "-o", f"type=oci,dest={tmp_path / 'img.tar'}", str(ctx))
    (tmp_path / "other").mkdir()
    other = CLI(tmp_path / "other")
    other("copy", f"oci-archive:{tmp_path / 'img.tar'}", "store:loaded:1")
    assert other("run", "--rm", "loaded:1", "cat", "/hello").stdout == b"hello\n"


def test_output_docker_archive_runs_in_docker(docker, pybuild, busybox_image, ctx, tmp_path):
    tag = f"pybuild-oflag-{secrets.token_hex(4)}:1"
    pybuild("build", "-t", tag, "-o", f"type=docker,dest={tmp_path / 'img.tar'}", str(ctx))
    try:
        subprocess.run(["docker", "load", "-i", str(tmp_path / "img.tar")], check=True, capture_output=True)
        out = subprocess.run(["docker", "run", "--rm", tag, "cat", "/hello"], check=True, capture_output=True)
        assert out.stdout == b"hello\n"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_output_errors_are_one_line(pybuild, busybox_image, ctx):
    for value, words in (("type=s3", b"type must be one of"), ("type=tar", b"needs dest"),
                         ("type=local,dest=x,colour=red", b"unknown option")):
        out = pybuild("build", "-o", value, str(ctx), check=False)
        assert out.returncode != 0 and words in out.stderr and out.stderr.count(b"\n") == 1, out.stderr


def test_metadata_file(pybuild, busybox_image, ctx, tmp_path):
    meta = tmp_path / "meta.json"
    out = pybuild("build", "-t", "meta:1", "-t", "meta:2", "--metadata-file", str(meta), str(ctx))
    doc = json.loads(meta.read_text())
    info = json.loads(pybuild("inspect", "meta:1").stdout)[0]
    assert doc["containerimage.digest"] == info["Descriptor"]["digest"]
    assert doc["containerimage.config.digest"] == info["Id"] == out.stdout.decode().strip()
    assert doc["image.name"] == "meta:1,meta:2"
    assert doc["containerimage.descriptor"]["size"] == info["Descriptor"]["size"]


def test_build_context_directory_image_and_oci_layout(pybuild, busybox_image, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "data.txt").write_text("from a named dir\n")
    pybuild("build", "-q", "-t", "ctxsrc:1", "-", input=b"FROM busybox\nRUN echo from-image > /img.txt\n")
    pybuild("copy", "store:ctxsrc:1", f"oci:{tmp_path / 'layout'}:v1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM base AS b\nRUN echo staged > /staged.txt\n"
        "FROM b\nCOPY --from=extra data.txt /data.txt\nCOPY --from=img /img.txt /img.txt\n"
        "COPY --from=layout /img.txt /layout.txt\n"
        "RUN --mount=from=extra,target=/mnt cat /mnt/data.txt > /mounted.txt\n")
    args = ["--build-context", f"extra={extra}", "--build-context", "img=docker-image://ctxsrc:1",
            "--build-context", f"layout=oci-layout://{tmp_path / 'layout'}:v1",
            "--build-context", "base=docker-image://busybox:latest"]
    pybuild("build", "-t", "named:1", *args, str(ctx))
    cat = pybuild("run", "--rm", "named:1", "cat", "/staged.txt", "/data.txt", "/img.txt", "/layout.txt",
                  "/mounted.txt").stdout.decode()
    assert cat == "staged\nfrom a named dir\nfrom-image\nfrom-image\nfrom a named dir\n"
    (extra / "data.txt").write_text("changed\n")  # the named dir is keyed by content
    pybuild("build", "-t", "named:2", *args, str(ctx))
    assert pybuild("run", "--rm", "named:2", "cat", "/data.txt").stdout == b"changed\n"
    bad = pybuild("build", "--build-context", "x=s3://bucket", str(ctx), check=False)
    assert bad.returncode != 0 and b"invalid --build-context" in bad.stderr
    df = b"FROM extra\n"
    as_base = pybuild("build", "--build-context", f"extra={extra}", "-", input=df, check=False)
    assert as_base.returncode != 0 and b"cannot be a base image" in as_base.stderr


def _with_ssh_add(busybox_rootfs: Path, dest: Path) -> Path:
    """busybox plus the host's ssh-add and the libraries it loads (ldd)."""
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    libs = subprocess.run(["ldd", "/usr/bin/ssh-add"], capture_output=True, text=True, check=True).stdout
    for path in ["/usr/bin/ssh-add"] + [p for p in re.findall(r"(/\S+)", libs)]:
        target = dest / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(path).resolve(), target)
    return dest


def test_ssh_agent_forwarded_to_run_and_never_in_a_layer(pybuild, busybox_rootfs, tmp_path):
    pybuild("import", str(_with_ssh_add(busybox_rootfs, tmp_path / "rootfs")), "sshimg:1")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci-deploy-key", "-f",
                    str(tmp_path / "key")], check=True)
    sock = tmp_path / "agent.sock"
    agent = subprocess.run(["ssh-agent", "-a", str(sock)], capture_output=True, text=True, check=True).stdout
    pid = int(re.search(r"SSH_AGENT_PID=(\d+)", agent).group(1))
    try:
        env = {"SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(tmp_path / "key")], check=True, env={**os.environ, **env})
        listed = subprocess.run(["ssh-add", "-l"], capture_output=True, text=True, check=True,
                                env={**os.environ, **env}).stdout
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM sshimg:1\n"
                                        "RUN --mount=type=ssh ssh-add -l > /keys.txt && echo $SSH_AUTH_SOCK > /sock.txt\n")
        pybuild("build", "-t", "ssh:1", "--ssh", "default", str(ctx), env=env)
        assert pybuild("run", "--rm", "ssh:1", "cat", "/keys.txt").stdout.decode() == listed
        assert "ci-deploy-key" in listed
        assert pybuild("run", "--rm", "ssh:1", "cat", "/sock.txt").stdout == b"/run/buildkit/ssh_agent.0\n"
        info = json.loads(pybuild("inspect", "ssh:1").stdout)[0]
        blobs = Path(pybuild.root) / "store" / "blobs" / "sha256"
        manifest = json.loads((blobs / info["Descriptor"]["digest"].split(":")[1]).read_text())
        with tarfile.open(blobs / manifest["layers"][-1]["digest"].split(":")[1]) as tar:
            names = tar.getnames()
        assert "keys.txt" in names and not any(n.startswith("run/buildkit") for n in names), names
        (ctx / "Dockerfile").write_text("FROM sshimg:1\nRUN --mount=type=ssh,required=true true\n")
        missing = pybuild("build", str(ctx), check=False)
        assert missing.returncode != 0 and b"no SSH agent 'default' was forwarded" in missing.stderr
        notsock = pybuild("build", "--ssh", f"deploy={tmp_path / 'key'}", str(ctx), check=False)
        assert notsock.returncode != 0 and b"is not an agent socket" in notsock.stderr
    finally:
        os.kill(pid, 15)


def _tree(pybuild, image: str, path: str) -> list[str]:
    out = pybuild("run", "--rm", image, "sh", "-c", f"cd {path} && find . | sort").stdout.decode()
    return [line for line in out.split() if line != "."]


def test_copy_exclude_parents_link_and_add_chmod(pybuild, busybox_image, tmp_path):
    """BuildKit's documented behaviour (docker 20.10's legacy builder rejects these flags)."""
    ctx = tmp_path / "ctx"
    for rel in ("src/a.py", "src/a_test.py", "src/pkg/b.py", "src/pkg/b.md", "docs/x.md", "docs/y.txt"):
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(rel + "\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN mkdir -m 700 /secretdir\n"
        "COPY --exclude=*_test.py --exclude=*.md src /app/\n"
        "COPY --parents src/pkg/b.py docs/*.txt /tree/\n"
        "COPY --link docs/y.txt /secretdir/y.txt\n"
        "ADD --chmod=640 docs/x.md /added.md\n"
        "COPY --from=busybox --exclude=s* /bin/busybox /bb/\n")
    pybuild("build", "-t", "flags:1", str(ctx))
    assert _tree(pybuild, "flags:1", "/app") == ["./a.py", "./pkg", "./pkg/b.py"]
    assert _tree(pybuild, "flags:1", "/tree") == ["./docs", "./docs/y.txt", "./src", "./src/pkg", "./src/pkg/b.py"]
    stat = pybuild("run", "--rm", "flags:1", "stat", "-c", "%a %n", "/added.md", "/secretdir").stdout.decode()
    # --link: the layer holds /secretdir as a new 0755 directory, independent of the 0700 one below
    assert stat.split("\n")[:2] == ["640 /added.md", "755 /secretdir"]
    # the --link layer holds only its own files: it can be rebased on any base
    info = json.loads(pybuild("inspect", "flags:1").stdout)[0]
    blobs = Path(pybuild.root) / "store" / "blobs" / "sha256"
    manifest = json.loads((blobs / info["Descriptor"]["digest"].split(":")[1]).read_text())
    with tarfile.open(blobs / manifest["layers"][4]["digest"].split(":")[1]) as tar:
        assert sorted(tar.getnames()) == ["secretdir", "secretdir/y.txt"]
    (ctx / "src" / "a_test.py").write_text("changed\n")  # excluded: the cache holds
    out = pybuild("build", "--progress", "plain", "-t", "flags:2", str(ctx)).stderr.decode()
    assert "CACHED" in out.split("COPY --exclude")[1].split("#")[1], out


def test_output_registry_pushes_every_name(pybuild, busybox_image, ctx, tls_registry, tmp_path):
    reg = tls_registry
    name = f"{reg.host}/oreg-{secrets.token_hex(4)}/app:1"
    cli = login(pybuild, reg, tmp_path / "docker")
    out = cli("build", "-o", "type=registry", "-t", name, str(ctx))
    assert f"pushed {name}@sha256:".encode() in out.stderr
    (tmp_path / "other").mkdir()
    other = login(CLI(tmp_path / "other"), reg, tmp_path / "docker-other")
    other("pull", name)
    assert other("run", "--rm", name, "cat", "/hello").stdout == b"hello\n"
    named = cli("build", "-o", f"type=image,name={name}-x", str(ctx))
    assert b"naming to " + f"{name}-x".encode() in named.stderr


def test_pull_matches_docker(docker, pybuild, plain_registry, busybox_rootfs, tmp_path):
    """docker 20.10 and pybuild against the same plain-HTTP registry on 127.0.0.1 (which docker
    treats as insecure by default): without --pull the local base is used, with --pull the
    registry's newer one."""
    reg = plain_registry
    repo = f"{reg.host}/pulldiff-{secrets.token_hex(4)}/base"
    pybuild.env["PYBUILD_INSECURE_REGISTRIES"] = reg.host
    v1 = tmp_path / "v1.tar"
    subprocess.run(["tar", "-C", str(versioned_rootfs(busybox_rootfs, tmp_path / "v1", "v1\n")), "-cf", str(v1), "."],
                   check=True)
    subprocess.run(["docker", "import", str(v1), f"{repo}:1"], check=True, capture_output=True)
    subprocess.run(["docker", "push", f"{repo}:1"], check=True, capture_output=True)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {repo}:1\nRUN cp /etc/version /seen\n")
    tags = []

    def both(*flags: str) -> tuple[bytes, bytes]:
        tag = f"pulldiff-{secrets.token_hex(4)}"
        tags.append(tag)
        subprocess.run(["docker", "build", "-q", *flags, "-t", tag, str(ctx)], check=True, capture_output=True)
        theirs = subprocess.run(["docker", "run", "--rm", tag, "cat", "/seen"], check=True, capture_output=True).stdout
        pybuild("build", "-q", *flags, "-t", tag, str(ctx))
        return theirs, pybuild("run", "--rm", tag, "cat", "/seen").stdout

    try:
        pybuild("pull", f"{repo}:1")
        assert both() == (b"v1\n", b"v1\n")
        # a newer base:1 appears in the registry (pushed from elsewhere)
        (tmp_path / "other").mkdir()
        other = CLI(tmp_path / "other")
        other.env["PYBUILD_INSECURE_REGISTRIES"] = reg.host
        other("import", str(versioned_rootfs(busybox_rootfs, tmp_path / "v2", "v2\n")), f"{repo}:1")
        other("push", f"{repo}:1")
        assert both() == (b"v1\n", b"v1\n")
        assert both("--pull") == (b"v2\n", b"v2\n")
    finally:
        subprocess.run(["docker", "rmi", "-f", f"{repo}:1", *tags], capture_output=True)


def test_output_archives_to_stdout(pybuild, busybox_image, ctx, tmp_path):
    out = pybuild("build", "-o", "type=oci,dest=-", str(ctx)).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        names = tar.getnames()
    assert "index.json" in names and "oci-layout" in names
    (tmp_path / "img.tar").write_bytes(pybuild("build", "-o", "type=docker,dest=-", "-t", "dock:1", str(ctx)).stdout)
    with tarfile.open(tmp_path / "img.tar") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest[0]["RepoTags"] == ["dock:1"]
