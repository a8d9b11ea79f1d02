"""Rootless mode: a normal user builds, pushes, pulls and runs, with the same digests as root.

Every test runs the real pybuild as a throwaway user with subordinate ids
(tests/rootless_helpers.py); the root builds to compare with use the ordinary fixture.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rootless_helpers import RootlessCLI, rootless, rootless_pythonpath, rootless_user  # noqa: F401

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}
DOCKERFILE = """FROM busybox
RUN mkdir /data && echo owned > /data/f && chown 1000:1000 /data/f && chmod 640 /data/f
RUN rm /bin/vi && mkdir -p /etc/app && echo x > /etc/app/conf && mkdir /opq && touch /opq/old
RUN rm -rf /opq && mkdir /opq && touch /opq/new
USER app
RUN id -u > /tmp/who
"""


def _context(tmp: Path, dockerfile: str) -> Path:
    ctx = tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _image_id(cli, ref: str) -> str:
    return cli("images", "-q", "--no-trunc", ref).stdout.decode().strip()


def _import_busybox(cli, busybox_tar: Path, where: Path) -> None:
    tar = where / "busybox.tar"
    shutil.copy(busybox_tar, tar)
    if isinstance(cli, RootlessCLI):
        cli.give(tar)
    cli("import", str(tar), "busybox:latest", env=EPOCH)


def _layer_names(root: Path, ref: str) -> list[set[str]]:
    """The entry names of each layer of ``ref`` in the store at ``root`` (read as root)."""
    import gzip
    import json
    import tarfile

    blobs = root / "store" / "blobs" / "sha256"
    index = json.loads((root / "store" / "index.json").read_text())
    desc = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
    manifest = json.loads((blobs / desc["digest"].split(":")[1]).read_text())
    out = []
    for layer in manifest["layers"]:
        with gzip.open(blobs / layer["digest"].split(":")[1]) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            out.append({m.name.removeprefix("./").rstrip("/") for m in tar})
    return out


@pytest.fixture
def rootless_busybox(rootless: RootlessCLI, busybox_tar: Path) -> RootlessCLI:
    _import_busybox(rootless, busybox_tar, rootless.workdir)
    return rootless


def test_build_as_user_gives_roots_digest_and_records_in_image_owners(rootless_busybox, pybuild):
    """The chown in a RUN step is 1000 in the layer, not the user's subordinate id: same digest as root."""
    rl = rootless_busybox
    ctx = rl.give(_context(rl.workdir, DOCKERFILE))
    rl("build", "-q", "-t", "app:1", str(ctx), env=EPOCH)
    pybuild("import", str(rl.workdir / "busybox.tar"), "busybox:latest", env=EPOCH)  # same path: same history
    pybuild("build", "-q", "-t", "app:1", str(ctx), env=EPOCH)
    assert _image_id(rl, "app:1") == _image_id(pybuild, "app:1")
    layers = _layer_names(rl.root, "app:1")
    assert "opq/.wh..wh..opq" in layers[-2] and "opq/new" in layers[-2]  # the opaque dir, from user.overlay.opaque
    assert "bin/.wh.vi" in layers[-3]
    out = rl("run", "--rm", "app:1", "sh", "-c", "stat -c '%u:%g %a' /data/f; cat /tmp/who; test -e /bin/vi || echo gone")
    assert out.stdout.decode().split() == ["1000:1000", "640", "1000", "gone"]
    # on disk the file belongs to the user's subordinate range (1000 inside = start + 999 outside)
    owners = {st.st_uid for st in (os.lstat(p) for p in (rl.root / "snapshots").rglob("f") if p.parent.name == "data")}
    assert owners == {rl.user.sub_start + 999}


def test_store_defaults_to_xdg_data_home(rootless_busybox):
    rl = rootless_busybox
    env = {"PYBUILD_ROOT": "", "XDG_DATA_HOME": str(rl.workdir / "xdg")}
    rl("import", str(rl.workdir / "busybox.tar"), "bb:1", env=env)
    assert (rl.workdir / "xdg" / "pybuild" / "store" / "index.json").is_file()
    proc = rl("images", env={"PYBUILD_ROOT": "", "HOME": str(rl.workdir / "home")}, check=False)
    assert proc.returncode == 0 and "bb" not in proc.stdout.decode()  # ~/.local/share/pybuild is another store


def test_push_pull_run_through_registry(rootless_busybox, plain_registry):
    rl = rootless_busybox
    ctx = rl.give(_context(rl.workdir, "FROM busybox\nRUN echo pushed > /p\n"))
    name = f"{plain_registry.host}/rootless/app:1"
    rl("build", "-q", "-t", name, str(ctx))
    rl("push", "--insecure", name)
    built = _image_id(rl, name)
    rl("rmi", name)
    rl("pull", "--insecure", name)
    assert _image_id(rl, name) == built
    assert rl("run", "--rm", name, "cat", "/p").stdout == b"pushed\n"


def test_limits_refused_with_reason_and_run_without_them(rootless_busybox):
    rl = rootless_busybox
    for flag, value in (("--memory", "64m"), ("--cpus", "0.5"), ("--pids-limit", "10")):
        proc = rl("run", "--rm", flag, value, "busybox", "true", check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 125 and err.count("\n") == 1, err
        assert f"no cgroup to apply {flag}" in err and "delegated" in err
    assert rl("run", "--rm", "busybox", "echo", "ok").stdout == b"ok\n"


def test_detached_container_stops_without_a_cgroup(rootless_busybox):
    rl = rootless_busybox
    rl("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
    assert "sleeper" in rl("ps").stdout.decode()
    rl("stop", "-t", "0", "sleeper")  # sleep as pid 1 ignores SIGTERM: the SIGKILL fallback ends it
    assert "sleeper" not in rl("ps").stdout.decode()
    rl("rm", "sleeper")


# --- attacks in rootless mode ------------------------------------------------------------

def test_root_inside_is_the_user_outside(rootless_busybox):
    rl = rootless_busybox
    vol = rl.workdir / "vol"
    vol.mkdir()
    rl.give(vol)
    out = rl("run", "--rm", "-v", f"{vol}:/vol", "busybox", "sh", "-c",
             "id -u; touch /vol/made-by-root; cat /proc/self/uid_map").stdout.decode().split()
    assert out[0] == "0"
    assert out[1:4] == ["0", str(rl.user.uid), "1"]
    assert os.lstat(vol / "made-by-root").st_uid == rl.user.uid


def test_container_cannot_write_outside_its_volumes(rootless_busybox):
    """Root in the container has no power over the user's other files nor over the host's."""
    rl = rootless_busybox
    secret = rl.workdir / "secret"
    secret.write_text("untouched\n")
    vol = rl.workdir / "vol"
    vol.mkdir()
    (vol / "escape").symlink_to(secret)
    rl.give(secret)
    rl.give(vol)
    script = ("echo pwned > /vol/escape; echo pwned > /vol/../secret; echo pwned > /proc/1/root/secret;"
              f" echo pwned > {secret}; echo pwned > /hostetc/passwd-pybuild-test; mkdir /hostetc/x; true")
    rl("run", "--rm", "-v", f"{vol}:/vol", "-v", "/etc:/hostetc", "busybox", "sh", "-c", script)
    assert secret.read_text() == "untouched\n"
    assert not os.path.exists("/etc/passwd-pybuild-test") and not os.path.exists("/etc/x")
    assert (vol / "escape").is_symlink()


def test_container_cannot_see_host_processes(rootless_busybox):
    rl = rootless_busybox
    marker = subprocess.Popen(["runuser", "-u", rl.user.name, "--", "sleep", "1000"])
    try:
        out = rl("run", "--rm", "busybox", "sh", "-c", "ls /proc | grep -E '^[0-9]+$'; ps -o pid,comm").stdout.decode()
        pids = [line for line in out.split() if line.isdigit()]
        assert str(marker.pid) not in pids
        assert "sleep" not in out
        assert set(pids) <= {"1", "2", "3", "4", "5", "6", "7", "8"}  # the container's own few processes
    finally:
        marker.kill()
        marker.wait()


# --- networking: a user-mode stack per container ---------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def web_image(rootless_busybox):
    rl = rootless_busybox
    ctx = rl.give(_context(rl.workdir, "FROM busybox\nRUN mkdir /www && echo hello-rootless > /www/index.html\n"))
    rl("build", "-q", "-t", "web", str(ctx))
    return rl


def test_default_network_is_pasta_and_publishes_ports(web_image):
    """``-p`` reaches the container through pasta; the container starts only once its network is up."""
    rl = web_image
    port = _free_port()
    vol = rl.workdir / "sync"
    vol.mkdir()
    os.mkfifo(vol / "up")
    rl.give(vol)
    # httpd without -f returns once it listens; the FIFO then tells the test
    rl("run", "-d", "--name", "web", "--network", "bridge", "-p", f"127.0.0.1:{port}:80", "-v", f"{vol}:/sync",
       "web", "sh", "-c", "ls /sys/class/net > /sync/ifaces; httpd -p 80 -h /www && echo up > /sync/up && exec sleep 1000")
    try:
        assert (vol / "up").read_text() == "up\n"
        assert "eth0" in (vol / "ifaces").read_text().split()  # its own interface, not the host's
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            reply = b"".join(iter(lambda: conn.recv(4096), b""))
        assert reply.endswith(b"hello-rootless\n")
        assert rl("port", "web").stdout.decode().strip() == f"80/tcp -> 127.0.0.1:{port}"
    finally:
        rl("rm", "-f", "web")
    assert list((rl.root / "netns").iterdir()) == []  # namespace file, pid file and teardown record gone


def test_container_cannot_reach_host_loopback(web_image):
    """The host's 127.0.0.1 services stay out of reach (pasta --no-map-gw, no inbound forwarding)."""
    rl = web_image
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        out = rl("run", "--rm", "--network", "bridge", "web", "sh", "-c",
                 f"nc 127.0.0.1 {port} </dev/null && echo REACHED; echo done").stdout.decode()
        assert "REACHED" not in out and "done" in out
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


def _tool_dir(rl: RootlessCLI, tools: list[str]) -> str:
    """A PATH holding only the id-mapping helpers and ``tools`` (to choose the backend)."""
    path = rl.workdir / ("bin-" + "-".join(tools or ["none"]))
    path.mkdir()
    for name in ["newuidmap", "newgidmap", *tools]:
        (path / name).symlink_to(shutil.which(name))
    rl.give(path)
    return str(path)


def test_slirp4netns_when_pasta_is_missing(web_image):
    rl = web_image
    env = {"PATH": _tool_dir(rl, ["slirp4netns"])}
    out = rl("run", "--rm", "--network", "bridge", "web", "ls", "/sys/class/net", env=env).stdout.decode().split()
    assert "tap0" in out
    proc = rl("run", "--rm", "--network", "bridge", "-p", "80", "web", "true", env=env, check=False)
    assert proc.returncode == 125 and "install pasta" in proc.stderr.decode()


def test_no_network_tool_is_one_clear_line(web_image):
    rl = web_image
    proc = rl("run", "--rm", "--network", "bridge", "web", "true", env={"PATH": _tool_dir(rl, [])}, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and err.count("\n") == 1
    assert "pasta (Debian package passt) or slirp4netns" in err
    assert rl("run", "--rm", "--network", "none", "web", "ls", "/sys/class/net").stdout.decode().split() == ["lo"]
    assert rl("run", "--rm", "--network", "host", "web", "true").returncode == 0


def test_user_defined_networks_refused(web_image):
    for args in (("run", "--rm", "--network", "mynet", "web", "true"), ("network", "create", "mynet")):
        proc = web_image(*args, check=False)
        assert proc.returncode == 125 and "no user-defined networks" in proc.stderr.decode()
    assert "mynet" not in web_image("network", "ls").stdout.decode()


def test_info_names_mode_store_driver_network_cgroups(rootless, pybuild):
    text = rootless("info").stdout.decode()
    facts = dict(line.split(": ", 1) for line in text.splitlines())
    assert facts["Mode"].startswith("rootless")
    assert facts["Store"] == str(rootless.root)
    assert "userxattr" in facts["Storage driver"]
    assert "pasta" in facts["Network"]
    assert facts["Cgroup"].startswith("v1, none delegated") or facts["Cgroup"].startswith("v2")
    assert "Missing" in facts
    root_facts = dict(line.split(": ", 1) for line in pybuild("info").stdout.decode().splitlines())
    assert root_facts["Mode"] == "root" and root_facts["Network"].startswith("cni")
    missing = rootless("info", env={"PATH": "/nonexistent"}).stdout.decode()
    assert "uidmap" in missing and "pasta" in missing


def test_exec_enters_the_namespace_of_the_command_that_started_it(rootless_busybox):
    """The container's namespaces belong to its owner's user namespace; exec joins that one."""
    rl = rootless_busybox
    for network in ("host", "bridge"):
        rl("run", "-d", "--name", "target", "--network", network, "busybox", "sleep", "1000")
        try:
            out = rl("exec", "target", "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '").stdout.decode()
            assert out.split("\n")[:2] == ["0", "sleep 1000 "]
            assert rl("exec", "-u", "1000", "target", "id", "-u").stdout == b"1000\n"
            assert rl("exec", "target", "sh", "-c", "exit 7", check=False).returncode == 7
        finally:
            rl("rm", "-f", "target")
    proc = rl("exec", "target", "true", check=False)
    assert proc.returncode != 0 and "no such container" in proc.stderr.decode()


def test_no_namespaces_is_one_line_saying_what_to_grant(pybuild, busybox_image):
    """Root without CAP_SYS_ADMIN (as in a docker container) cannot make namespaces: one clear line."""
    proc = subprocess.run(["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--",
                           str(Path(sys.executable).parent / "pybuild"),
                           "run", "--rm", "--network", "none", busybox_image, "true"],
                          env=pybuild.env, capture_output=True)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and err.count("\n") == 1, err
    assert "cannot create the container's namespaces" in err and "SYS_ADMIN" in err


def test_kill_9_of_the_command_ends_its_namespace_and_container(rootless_busybox):
    """The pid a user kills is the waiting parent: the namespace's side dies with it, as in root mode."""
    rl = rootless_busybox
    vol = rl.workdir / "sync"
    vol.mkdir()
    os.mkfifo(vol / "up")
    rl.give(vol)
    argv = ["runuser", "-u", rl.user.name, "--", "env", "-i", f"HOME={rl.user.home}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            *[f"{k}={v}" for k, v in rl.env.items()], rl.python, "-m", "builder.cli", "run", "--name", "victim",
            "--network", "none", "-v", f"{vol}:/sync", "busybox", "sh", "-c", "echo up > /sync/up; exec sleep 1000"]
    runuser = subprocess.Popen(argv, cwd=str(rl.workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert (vol / "up").read_text() == "up\n"  # the container runs
        children = Path(f"/proc/{runuser.pid}/task/{runuser.pid}/children").read_text().split()
        assert len(children) == 1  # the waiting parent of the rootless command
        os.kill(int(children[0]), 9)
        runuser.wait(timeout=60)
    finally:
        if runuser.poll() is None:
            runuser.kill()
            runuser.wait()
    line = [x for x in rl("ps", "-a").stdout.decode().splitlines() if "victim" in x]
    assert len(line) == 1 and "Exited" in line[0]


def test_build_run_steps_network_none_and_host(rootless_busybox):
    """RUN steps use the user's own network (host) or none; none gets only a loopback."""
    rl = rootless_busybox
    ctx = rl.give(_context(rl.workdir, "FROM busybox\nRUN ls /sys/class/net > /ifaces\n"))
    rl("build", "-q", "--network", "none", "-t", "isolated", str(ctx))
    assert rl("run", "--rm", "--network", "none", "isolated", "cat", "/ifaces").stdout == b"lo\n"
    rl("build", "-q", "--no-cache", "--network", "host", "-t", "shared", str(ctx))
    seen = set(rl("run", "--rm", "--network", "none", "shared", "cat", "/ifaces").stdout.decode().split())
    assert (seen & set(os.listdir("/sys/class/net"))) - {"lo"}  # the host's own interfaces (others may come and go)
