"""Build contexts CI scripts pass (issue 10): a tar on stdin or in a file (plain, gz, bz2, xz,
zst), an http URL of a tarball, a git URL with ``#ref:subdir`` (served by ``git daemon``).

Each build copies the context and writes a listing of it (paths and checksums) into the
image; the listing is compared with docker 20.10's (``docker build - < ctx.tar``) where
docker reads that kind of context, else with the tree the archive was made from.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import lzma
import secrets
import shutil
import socket
import subprocess
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zstandard

DOCKERFILE = """\
FROM {base}
COPY . /ctx
RUN cd /ctx && find . | sort > /list.txt && find . -type f | sort | xargs md5sum >> /list.txt
"""


def make_context(path: Path, base: str) -> Path:
    path.mkdir()
    (path / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (path / "app").mkdir()
    (path / "app" / "main.txt").write_text("main\n")
    (path / "app" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (path / "app" / "run.sh").chmod(0o755)
    (path / "README").write_text("readme\n")
    return path


def tar_bytes(ctx: Path, compression: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for entry in sorted(ctx.rglob("*")):
            tar.add(entry, arcname=str(entry.relative_to(ctx)), recursive=False)
    data = raw.getvalue()
    return {"plain": lambda d: d, "gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
            "zst": zstandard.ZstdCompressor().compress}[compression](data)


def listing(pybuild, image: str) -> str:
    return pybuild("run", "--rm", image, "cat", "/list.txt").stdout.decode()


@pytest.fixture
def expected(pybuild, busybox_image, tmp_path) -> str:
    """The listing a plain directory context gives."""
    ctx = make_context(tmp_path / "dirctx", busybox_image)
    pybuild("build", "-t", "ctx-dir", str(ctx))
    return listing(pybuild, "ctx-dir")


@pytest.mark.parametrize("compression", ["plain", "gz", "bz2", "xz", "zst"])
def test_tar_context_on_stdin_and_as_file(pybuild, busybox_image, tmp_path, expected, compression):
    ctx = make_context(tmp_path / "ctx", busybox_image)
    data = tar_bytes(ctx, compression)
    pybuild("build", "-t", "ctx-stdin", "-", input=data)
    assert listing(pybuild, "ctx-stdin") == expected
    archive = tmp_path / f"ctx.tar.{compression}"
    archive.write_bytes(data)
    pybuild("build", "-t", "ctx-file", str(archive))
    assert listing(pybuild, "ctx-file") == expected
    assert not list((Path(pybuild.root) / "tmp").glob("context-*")), "the unpacked context is removed"


def test_tar_context_on_stdin_matches_docker(docker, pybuild, busybox_image, busybox_tar, tmp_path):
    tag = f"pybuild-ctxtest-{secrets.token_hex(4)}"
    subprocess.run(["docker", "import", str(busybox_tar), f"{tag}-base"], check=True, capture_output=True)
    try:
        pybuild("tag", busybox_image, f"{tag}-base")
        data = tar_bytes(make_context(tmp_path / "ctx", f"{tag}-base"), "gz")
        subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=data, check=True, capture_output=True)
        theirs = subprocess.run(["docker", "run", "--rm", tag, "cat", "/list.txt"], check=True,
                                capture_output=True).stdout.decode()
        pybuild("build", "-t", tag, "-", input=data)
        assert listing(pybuild, tag) == theirs
    finally:
        subprocess.run(["docker", "rmi", "-f", tag, f"{tag}-base"], capture_output=True)


def test_dockerfile_on_stdin_is_still_a_dockerfile(pybuild, busybox_image):
    out = pybuild("build", "-t", "stdin-df", "-", input=b"FROM busybox\nRUN echo hi > /hi\n")
    assert pybuild("run", "--rm", "stdin-df", "cat", "/hi").stdout == b"hi\n"
    assert out.returncode == 0


def test_hostile_context_tar_cannot_write_outside(pybuild, busybox_image, tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        df = b"FROM busybox\nCOPY . /ctx\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
        evil = tarfile.TarInfo("../../../../escaped-by-context")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
        through = tarfile.TarInfo("link/passwd-from-context")
        through.size = 4
        tar.addfile(through, io.BytesIO(b"evil"))
    out = pybuild("build", "-t", "hostile-ctx", "-", input=raw.getvalue(), check=False)
    assert not Path("/escaped-by-context").exists() and not Path("/etc/passwd-from-context").exists()
    assert b"Traceback" not in out.stderr


def test_garbage_archive_is_one_line_error(pybuild, tmp_path):
    out = pybuild("build", "-", input=b"\x1f\x8b" + b"not really gzip" * 10, check=False)
    assert out.returncode != 0 and out.stderr.decode().count("\n") == 1, out.stderr
    missing = pybuild("build", str(tmp_path / "nope.tar"), check=False)
    assert missing.returncode != 0 and b"does not exist" in missing.stderr


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_http_url_of_a_tarball(pybuild, busybox_image, tmp_path, expected, http_dir):
    www, url = http_dir
    (www / "ctx.tar.gz").write_bytes(tar_bytes(make_context(tmp_path / "ctx", busybox_image), "gz"))
    pybuild("build", "-t", "ctx-url", f"{url}/ctx.tar.gz")
    assert listing(pybuild, "ctx-url") == expected
    (www / "Dockerfile").write_text("FROM busybox\nRUN echo from-url > /u\n")
    pybuild("build", "-t", "ctx-url-df", f"{url}/Dockerfile")
    assert pybuild("run", "--rm", "ctx-url-df", "cat", "/u").stdout == b"from-url\n"
    gone = pybuild("build", f"{url}/missing.tar.gz", check=False)
    assert gone.returncode != 0 and b"HTTP 404" in gone.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def git_daemon(tmp_path):
    base = tmp_path / "git"
    base.mkdir()
    port = _free_port()
    proc = subprocess.Popen(["git", "daemon", "--verbose", "--reuseaddr", "--export-all", f"--base-path={base}",
                             "--listen=127.0.0.1", f"--port={port}", "--informative-errors", str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        line = b""
        while b"Ready to rumble" not in line:  # git daemon says so once it listens
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError("git daemon did not start")
        yield base, f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()


def test_git_url_with_ref_and_subdir(pybuild, busybox_image, tmp_path, expected, git_daemon):
    base, url = git_daemon
    repo = base / "project.git"
    work = tmp_path / "work"
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def git(*args, cwd=work):
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)

    work.mkdir()
    git("init", "-q", "-b", "main")
    (work / "top.txt").write_text("on main\n")
    git("add", ".")
    git("commit", "-qm", "main")
    git("checkout", "-q", "-b", "release")
    make_context(work / "sub", busybox_image)
    git("add", ".")
    git("commit", "-qm", "release")
    git("clone", "-q", "--bare", str(work), str(repo), cwd=tmp_path)
    pybuild("build", "-t", "ctx-git", f"{url}/project.git#release:sub")
    assert listing(pybuild, "ctx-git") == expected
    wrong = pybuild("build", f"{url}/project.git#no-such-branch", check=False)
    assert wrong.returncode != 0 and wrong.stderr.decode().count("\n") == 1 and b"git fetch" in wrong.stderr


def _docker_listing(tag: str, context: str) -> str:
    subprocess.run(["docker", "build", "-q", "-t", tag, context], check=True, capture_output=True)
    return subprocess.run(["docker", "run", "--rm", tag, "cat", "/list.txt"], check=True,
                          capture_output=True).stdout.decode()


def test_url_and_git_contexts_match_docker(docker, pybuild, busybox_image, busybox_tar, tmp_path, http_dir,
                                           git_daemon):
    """docker 20.10 reads the same URL and git contexts (its daemon fetches the URL, its CLI
    runs git); the copied trees must list the same."""
    tag = f"pybuild-ctxurl-{secrets.token_hex(4)}"
    subprocess.run(["docker", "import", str(busybox_tar), f"{tag}-base"], check=True, capture_output=True)
    try:
        pybuild("tag", busybox_image, f"{tag}-base")
        www, url = http_dir
        src = make_context(tmp_path / "ctx", f"{tag}-base")
        (www / "ctx.tar.gz").write_bytes(tar_bytes(src, "gz"))
        theirs = _docker_listing(tag, f"{url}/ctx.tar.gz")
        pybuild("build", "-t", tag, f"{url}/ctx.tar.gz")
        assert listing(pybuild, tag) == theirs

        base, git_url = git_daemon
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
        work = tmp_path / "work"
        work.mkdir()
        for args in (["init", "-q", "-b", "main"],):
            subprocess.run(["git", *args], cwd=work, check=True, capture_output=True, env=env)
        shutil.copytree(src, work / "sub")
        for args in (["add", "."], ["commit", "-qm", "c"], ["tag", "v1"]):
            subprocess.run(["git", *args], cwd=work, check=True, capture_output=True, env=env)
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(base / "p.git")], check=True,
                       capture_output=True, env=env)
        theirs = _docker_listing(tag, f"{git_url}/p.git#v1:sub")
        pybuild("build", "-t", tag, f"{git_url}/p.git#v1:sub")
        assert listing(pybuild, tag) == theirs
    finally:
        subprocess.run(["docker", "rmi", "-f", tag, f"{tag}-base"], capture_output=True)


def test_git_context_submodule_cannot_read_host_repositories(pybuild, busybox_image, tmp_path, git_daemon):
    """A served repository whose submodule points at a file:// repository on the build host must not
    pull that host repository into the context."""
    base, url = git_daemon
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "GIT_ALLOW_PROTOCOL": "file:git"}

    def git(*args, cwd):
        subprocess.run(["git", "-c", "protocol.file.allow=always", *args], cwd=cwd, check=True, capture_output=True,
                       env=env)

    secret = tmp_path / "host-secret"
    secret.mkdir()
    git("init", "-q", "-b", "main", cwd=secret)
    (secret / "token").write_text("host secret\n")
    git("add", ".", cwd=secret)
    git("commit", "-qm", "s", cwd=secret)
    work = tmp_path / "evil"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx\n")
    git("submodule", "add", "-q", f"file://{secret}", "sub", cwd=work)
    git("commit", "-qm", "evil", cwd=work)
    git("clone", "-q", "--bare", str(work), str(base / "evil.git"), cwd=tmp_path)
    out = pybuild("build", "-t", "evil-ctx", f"{url}/evil.git#main", check=False)
    if out.returncode == 0:
        assert pybuild("run", "--rm", "evil-ctx", "ls", "/ctx/sub").stdout == b""
    else:
        assert out.stderr.count(b"\n") == 1 and b"git submodule" in out.stderr
