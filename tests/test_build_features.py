"""pybuild build features beyond the legacy builder, checked on the image it makes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from differential.harness import summarize_store_image

pytestmark = pytest.mark.slow


def _ctx(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def _build(pybuild, ctx: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return pybuild("build", "--progress", "plain", "-q", *extra, str(ctx), check=check)


def _image(root: Path, proc: subprocess.CompletedProcess) -> dict:
    return summarize_store_image(root, proc.stdout.decode().split()[-1])


def test_secret_and_cache_mount_stay_out_of_layers(pybuild, root, busybox_image, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("TOPSECRET")
    ctx = _ctx(tmp_path, "FROM busybox\n"
               "RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /len\n"
               "RUN --mount=type=cache,target=/cache echo x >> /cache/n && wc -l < /cache/n > /count\n")
    image = _image(root, _build(pybuild, ctx, "--secret", f"id=token,src={secret}"))
    fs = image["fs"]
    assert "len" in fs and not any(p.startswith(("run/secrets", "cache")) for p in fs)
    store_blobs = subprocess.run(["grep", "-r", "-l", "TOPSECRET", str(root / "store")], capture_output=True)
    assert store_blobs.stdout == b""
    _build(pybuild, ctx, "--no-cache", "--secret", f"id=token,src={secret}")
    counter = next((root / "cache" / "mounts").iterdir()) / "n"
    assert counter.read_text() == "x\nx\n"


def test_copy_chmod_heredoc_and_link_flags(pybuild, root, busybox_image, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY --chmod=0700 a.txt /a\nCOPY <<EOF /inline.txt\nhello $HOSTNAME\nEOF\n"
               "RUN <<EOF\necho from-heredoc > /h\nEOF\n", {"a.txt": "a\n"})
    fs = _image(root, _build(pybuild, ctx))["fs"]
    assert fs["a"]["mode"] == 0o700
    assert fs["inline.txt"]["type"] == "file" and "h" in fs


def test_target_iidfile_label_and_stdin(pybuild, root, busybox_image, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox AS one\nRUN echo 1 > /one\nFROM one\nRUN false\n")
    iid = tmp_path / "iid"
    proc = _build(pybuild, ctx, "--target", "one", "--iidfile", str(iid), "--label", "team=build")
    assert iid.read_text() == proc.stdout.decode().strip()
    image = summarize_store_image(root, iid.read_text())
    assert image["config"]["Labels"] == {"team": "build"} and "one" in image["fs"]
    proc = pybuild("build", "-q", "-", input=b"FROM busybox\nENV FROM_STDIN=1\n")
    env = summarize_store_image(root, proc.stdout.decode().strip())["config"]["Env"]
    assert "FROM_STDIN=1" in env


def test_failing_run_names_step_line_and_exit_code(pybuild, busybox_image, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nRUN echo before\nRUN echo visible-output; exit 7\n")
    proc = pybuild("build", "--progress", "plain", str(ctx), check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0
    # the command text also holds "7": the code must be what the line ends with
    assert "Dockerfile:3" in err and err.splitlines()[-1].endswith("non-zero code: 7") and "visible-output" in err


def test_network_none_has_only_loopback(pybuild, root, busybox_image, tmp_path):
    import hashlib

    ctx = _ctx(tmp_path, "FROM busybox\nRUN ls /sys/class/net > /ifaces\n")
    fs = _image(root, _build(pybuild, ctx, "--network", "none"))["fs"]
    assert fs["ifaces"]["sha256"] == hashlib.sha256(b"lo\n").hexdigest()
    (tmp_path / "n2").mkdir()
    ctx2 = _ctx(tmp_path / "n2", "FROM busybox\nRUN --network=none ls /sys/class/net > /ifaces2\n")
    fs = _image(root, _build(pybuild, ctx2))["fs"]
    assert fs["ifaces2"]["sha256"] == hashlib.sha256(b"lo\n").hexdigest()


@pytest.mark.docker
def test_image_runs_the_same_in_docker(pybuild, root, busybox_image, docker, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY msg /msg\nRUN echo built >> /msg\nCMD [\"cat\", \"/msg\"]\n",
               {"msg": "hello\n"})
    _build(pybuild, ctx, "-t", "pybuild-docker-interop:latest")
    ours = pybuild("run", "--rm", "pybuild-docker-interop:latest").stdout
    archive = tmp_path / "image.tar"
    pybuild("save", "-o", str(archive), "pybuild-docker-interop:latest")
    subprocess.run(["docker", "load", "-i", str(archive)], check=True, capture_output=True)
    try:
        theirs = subprocess.run(["docker", "run", "--rm", "pybuild-docker-interop:latest"], check=True,
                                capture_output=True).stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", "pybuild-docker-interop:latest"], capture_output=True)
    assert ours == theirs == b"hello\nbuilt\n"


def test_kill_during_run_cleans_up(pybuild, root, busybox_image, tmp_path):
    import os
    import signal

    from conftest import PYBUILD

    # "started" is printed once the sleep has exec'd, so the signal lands while it runs
    ctx = _ctx(tmp_path, "FROM busybox\nRUN sleep 31.25 & until tr '\\0' ' ' < /proc/$!/cmdline | grep -q 31.25; "
               "do :; done; echo started; wait\n")
    proc = subprocess.Popen([PYBUILD, "--root", str(root), "build", "--progress", "plain", str(ctx)],
                            stderr=subprocess.PIPE, env={**os.environ, "PYBUILD_ROOT": str(root)})
    try:
        for line in proc.stderr:
            if line.strip().endswith(b"started") and b"RUN" not in line:
                break
        else:
            raise AssertionError("the RUN step never started")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) != 0
    finally:
        proc.kill()
        proc.wait()
    # once build has exited: no process of the step, no temp dir (the step's mounts lived in
    # its own mount namespace, which died with its processes)
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith("sleep\x0031.25")]
    assert leftovers == []
    assert not (root / "tmp").exists() or list((root / "tmp").iterdir()) == []
    pybuild("fsck")


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as fh:
            return fh.read()
    except OSError:
        return ""


def test_add_url_with_checksum(pybuild, root, busybox_image, tmp_path):
    import hashlib
    import http.server
    import threading

    served = tmp_path / "srv"
    served.mkdir()
    (served / "data.bin").write_bytes(b"remote content\n")
    digest = hashlib.sha256(b"remote content\n").hexdigest()
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/data.bin"
    try:
        ctx = _ctx(tmp_path, f"FROM busybox\nADD --checksum=sha256:{digest} {url} /dl/\n")
        fs = _image(root, _build(pybuild, ctx))["fs"]
        assert fs["dl/data.bin"]["sha256"] == digest and fs["dl/data.bin"]["mode"] == 0o600
        (tmp_path / "bad").mkdir()
        bad = _ctx(tmp_path / "bad", f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {url} /dl/\n")
        proc = _build(pybuild, bad, check=False)
        # the Dockerfile line holds "--checksum" too: check the mismatch itself is reported
        mismatch = f"checksum of {url} is sha256:{digest}, expected sha256:{'0' * 64}"
        assert proc.returncode != 0 and b"Dockerfile:2" in proc.stderr and mismatch.encode() in proc.stderr
    finally:
        server.shutdown()


def test_copy_from_image_symlinks_stay_inside(pybuild, root, busybox_image, tmp_path):
    """Absolute symlinks in a stage resolve inside the stage, never to the host."""
    import hashlib

    ctx = _ctx(tmp_path, "FROM busybox AS src\nRUN mkdir /inner && echo inside > /inner/hostname && "
               "echo stagehost > /etc/motd && ln -s /inner /etc-link && ln -s /etc/motd /abs-file\n"
               "FROM busybox\nCOPY --from=src /etc-link/ /got/\nCOPY --from=src /abs-file /file\n")
    fs = _image(root, _build(pybuild, ctx))["fs"]
    assert fs["got/hostname"]["sha256"] == hashlib.sha256(b"inside\n").hexdigest()
    assert fs["file"]["sha256"] == hashlib.sha256(b"stagehost\n").hexdigest()


@pytest.mark.registry
def test_build_push_to_registry(pybuild, busybox_image, plain_registry, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nRUN echo pushed > /p\n")
    name = f"{plain_registry.host}/built/app:1"
    proc = pybuild("build", "--progress", "plain", "-t", name, "--push", "--insecure", str(ctx))
    assert f"pushed {name}@sha256:" in proc.stderr.decode()
    pybuild("rmi", name)
    pybuild("pull", "--insecure", name)


def test_independent_stages_run_concurrently(pybuild, root, busybox_image, tmp_path):
    """Each stage waits (up to 120 s, a bound for a loaded machine, not a timing window) for the
    other to have started: only concurrency passes."""
    wait = ("touch /sync/{me} && i=0; while [ ! -e /sync/{other} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; "
            "[ -e /sync/{other} ] && echo together > /{me}-result")
    stage = "FROM busybox AS {me}\nRUN --mount=type=cache,target=/sync,id=sync " + wait + "\n"
    dockerfile = (stage.format(me="a", other="b") + stage.format(me="b", other="a")
                  + "FROM busybox\nCOPY --from=a /a-result /\nCOPY --from=b /b-result /\n")
    fs = _image(root, _build(pybuild, _ctx(tmp_path, dockerfile)))["fs"]
    assert "a-result" in fs and "b-result" in fs


def test_zstd_compression(pybuild, root, busybox_image, tmp_path):
    from registry.store import Store

    ctx = _ctx(tmp_path, "FROM busybox\nRUN echo z > /z\n")
    image_id = _build(pybuild, ctx, "--compression", "zstd").stdout.decode().strip()
    layers = Store(root).image(image_id).layers
    assert layers[-1].media_type.endswith("+zstd")
    assert "z" in summarize_store_image(root, image_id)["fs"]


def test_failing_stage_stops_the_concurrent_one(pybuild, busybox_image, tmp_path):
    """The bad stage fails only once the slow one runs (a marker in a shared cache mount); the
    slow one would run for an hour, so the build ending at all shows it was stopped."""
    import os

    sync = "--mount=type=cache,target=/sync,id=stop-sync"
    ctx = _ctx(tmp_path, f"FROM busybox AS slow\nRUN {sync} touch /sync/slow && sleep 3599.25\n"
               f"FROM busybox AS bad\nRUN {sync} until [ -e /sync/slow ]; do sleep 0.1; done; exit 3\n"
               "FROM busybox\nCOPY --from=slow /etc/passwd /a\nCOPY --from=bad /etc/passwd /b\n")
    proc = pybuild("build", "--progress", "plain", str(ctx), check=False, timeout=600)
    assert proc.returncode != 0 and b"Dockerfile:4" in proc.stderr
    assert b"exit code: 3" in proc.stderr or b"exit code 3" in proc.stderr, proc.stderr
    assert [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith("sleep\x003599.25")] == []


def test_custom_dockerfile_and_its_own_dockerignore(pybuild, root, busybox_image, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY . /all\n", {"keep.txt": "k\n", "drop.txt": "d\n"})
    other = tmp_path / "build.Dockerfile"
    other.write_text("FROM busybox\nCOPY . /ctx\n")
    Path(str(other) + ".dockerignore").write_text("drop.txt\nDockerfile\n")
    (ctx / ".dockerignore").write_text("keep.txt\n")
    fs = _image(root, _build(pybuild, ctx, "-f", str(other)))["fs"]
    assert "ctx/keep.txt" in fs and "ctx/drop.txt" not in fs and "ctx/Dockerfile" not in fs
    proc = pybuild("build", "-q", "-f", "-", str(ctx), input=b"FROM busybox\nCOPY drop.txt /from-stdin\n")
    assert "from-stdin" in summarize_store_image(root, proc.stdout.decode().strip())["fs"]


def test_locked_cache_mount_waits_for_the_holder(pybuild, root, busybox_image, tmp_path):
    """A sharing=locked cache mount is held by one RUN at a time: while the test holds the
    lock, the build's RUN waits on it (a blocked waiter in /proc/locks) and has not run."""
    import fcntl
    import os

    from conftest import PYBUILD
    from runner_helpers import wait_for

    ctx = _ctx(tmp_path, "FROM busybox\nRUN --mount=type=cache,target=/c,id=lk,sharing=locked "
               "echo ran >> /c/log\n")
    _build(pybuild, ctx)  # makes the cache dir and its lock file
    (lock,) = (root / "cache" / "mounts").glob("*.lock")
    log = lock.with_suffix("") / "log"
    assert log.read_text() == "ran\n"
    with open(lock, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen([PYBUILD, "build", "-q", "--no-cache", str(ctx)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, "PYBUILD_ROOT": str(root)})
        try:
            inode = f":{os.stat(lock).st_ino} "
            wait_for(lambda: any("->" in line and inode in line for line in open("/proc/locks")), timeout=120)
            assert log.read_text() == "ran\n" and proc.poll() is None
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
        _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert log.read_text() == "ran\nran\n"


def test_bind_mount_from_stage_and_rw_discarded(pybuild, root, busybox_image, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox AS src\nRUN mkdir /data && echo payload > /data/p\n"
               "FROM busybox AS mid\nRUN --mount=type=bind,from=src,source=/data,target=/in cat /in/p > /copied\n"
               "RUN --mount=type=bind,from=src,source=/data,target=/rw,rw echo scribble > /rw/new && cat /rw/new > /seen\n"
               "FROM src\nCOPY --from=mid /copied /seen /\nRUN test ! -e /data/new && echo clean > /checked\n")
    fs = _image(root, _build(pybuild, ctx))["fs"]
    assert {"copied", "seen", "checked", "data/p"} <= set(fs) and "data/new" not in fs
    assert not any(p.startswith(("in", "rw")) for p in fs)


def test_relative_root(busybox_rootfs: Path, tmp_path: Path) -> None:
    """``--root`` given relative to the working directory still builds RUN steps."""
    from conftest import PYBUILD

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM base\nRUN echo hi > /hi\n")
    for args in (["import", str(busybox_rootfs), "base"], ["build", "-q", "-t", "out", "ctx"]):
        proc = subprocess.run([PYBUILD, "--root", "relroot", *args], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
