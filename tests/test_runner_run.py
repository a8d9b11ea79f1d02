"""``pybuild run`` end to end: docker's entrypoint/cmd rules, env, workdir, user,
volumes, exit codes, signals, and the container lifecycle (-d, logs, stop, rm, exec, wait)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from conftest import PYBUILD
from runner_helpers import cgroup_dir, container_id, container_state, image_variant, needs_root, wait_for

pytestmark = needs_root


@pytest.fixture
def image(busybox_image: str) -> str:
    return busybox_image


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode()


# ---- entrypoint / cmd (moby's merge rules) ---------------------------------------------

CASES = [
    # image Entrypoint, image Cmd, --entrypoint, args -> expected argv
    (None, ["echo", "cmd"], None, [], "cmd"),
    (None, ["echo", "cmd"], None, ["echo", "args"], "args"),
    (["echo", "ep"], ["cmd"], None, [], "ep cmd"),
    (["echo", "ep"], ["cmd"], None, ["args"], "ep args"),
    (["echo", "ep"], ["cmd"], "echo", [], ""),  # --entrypoint drops the image's Cmd
    (["echo", "ep"], ["cmd"], "echo", ["x"], "x"),
    (["echo", "ep"], ["echo", "cmd"], "", [], "cmd"),  # --entrypoint "" keeps the Cmd
    (["echo", "ep"], ["echo", "cmd"], "", ["echo", "y"], "y"),
]


@pytest.mark.parametrize("entrypoint,cmd,override,args,expected", CASES)
def test_entrypoint_cmd_rules(pybuild, root, image, entrypoint, cmd, override, args, expected):
    name = image_variant(root, image, "variant:1", Entrypoint=entrypoint, Cmd=cmd)
    flags = ["--entrypoint", override] if override is not None else []
    proc = pybuild("run", "--rm", *flags, name, *args)
    assert out(proc) == expected + "\n"


def test_no_command_is_an_error(pybuild, image):
    proc = pybuild("run", "--rm", image, check=False)
    assert proc.returncode == 125
    assert b"no command specified" in proc.stderr


# ---- env, workdir, user --------------------------------------------------------------


def test_env_from_image_flags_and_file(pybuild, root, image, tmp_path):
    name = image_variant(root, image, "envy:1", Env=["PATH=/bin:/usr/bin", "FROM_IMAGE=1", "OVER=image"])
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=2\n\nOVER=file\n")
    proc = pybuild("run", "--rm", "--env-file", str(env_file), "-e", "OVER=flag", "-e", "FROM_HOST",
                   "-e", "UNSET_ON_HOST", name, "env", env={"FROM_HOST": "h"})
    env = dict(line.split("=", 1) for line in out(proc).splitlines())
    assert env["FROM_IMAGE"] == "1" and env["FROM_FILE"] == "2" and env["OVER"] == "flag"
    assert env["FROM_HOST"] == "h" and "UNSET_ON_HOST" not in env
    assert env["PATH"] == "/bin:/usr/bin" and env["HOME"] == "/root" and env["HOSTNAME"]


def test_default_path_and_hostname(pybuild, image):
    proc = pybuild("run", "--rm", "--network", "none", "--hostname", "box", image, "sh", "-c", "echo $PATH; hostname; cat /etc/hostname")
    assert out(proc).splitlines() == ["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "box", "box"]


def test_workdir_from_image_and_flag_created_if_missing(pybuild, root, image):
    name = image_variant(root, image, "wd:1", WorkingDir="/srv/app")
    assert out(pybuild("run", "--rm", name, "pwd")) == "/srv/app\n"
    assert out(pybuild("run", "--rm", "-w", "/tmp/x/y", name, "pwd")) == "/tmp/x/y\n"


@pytest.mark.parametrize("user,expected", [
    ("", "uid=0(root) gid=0(root) groups=0(root)"),
    ("app", "uid=1000(app) gid=1000(app) groups=1000(app)"),
    ("1000", "uid=1000(app) gid=1000(app) groups=1000(app)"),
    ("app:nogroup", "uid=1000(app) gid=65534(nogroup) groups=65534(nogroup)"),
    ("4242", "uid=4242 gid=0(root) groups=0(root)"),
    ("4242:4343", "uid=4242 gid=4343 groups=4343"),
])
def test_user_resolution(pybuild, image, user, expected):
    flags = ["-u", user] if user else []
    assert out(pybuild("run", "--rm", *flags, image, "id")).strip() == expected


def test_image_user_applies_and_flag_overrides(pybuild, root, image):
    name = image_variant(root, image, "usr:1", User="app")
    assert out(pybuild("run", "--rm", name, "id", "-u")) == "1000\n"
    assert out(pybuild("run", "--rm", "-u", "0", name, "id", "-u")) == "0\n"


def test_unknown_user_fails_like_docker(pybuild, image):
    proc = pybuild("run", "--rm", "-u", "nosuchuser", image, "id", check=False)
    assert proc.returncode == 125
    assert b"unable to find user nosuchuser" in proc.stderr


# ---- volumes and tmpfs ---------------------------------------------------------------


def test_volume_rw_and_ro(pybuild, image, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("from host")
    proc = pybuild("run", "--rm", "-v", f"{vol}:/data", image, "sh", "-c", "cat /data/in; echo out > /data/out")
    assert out(proc) == "from host"
    assert (vol / "out").read_text() == "out\n"
    proc = pybuild("run", "--rm", "-v", f"{vol}:/data:ro", image, "sh", "-c", "echo x > /data/new", check=False)
    assert proc.returncode != 0 and b"Read-only file system" in proc.stderr
    assert not (vol / "new").exists()


def test_missing_host_dir_is_created_and_bad_volume_rejected(pybuild, image, tmp_path):
    pybuild("run", "--rm", "-v", f"{tmp_path}/fresh:/data", image, "touch", "/data/f")
    assert (tmp_path / "fresh" / "f").exists()
    proc = pybuild("run", "--rm", "-v", "./relative:/data", image, "true", check=False)
    assert proc.returncode == 125 and b"give an absolute path for a host directory" in proc.stderr


def test_tmpfs_and_read_only(pybuild, image):
    proc = pybuild("run", "--rm", "--read-only", "--tmpfs", "/scratch", image, "sh", "-c",
                   "echo ok > /scratch/f && cat /scratch/f; touch /rootfile", check=False)
    assert out(proc) == "ok\n"
    assert proc.returncode != 0 and b"Read-only file system" in proc.stderr


# ---- exit codes and signals ----------------------------------------------------------


@pytest.mark.parametrize("script,code", [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -9 $$; echo still here; exit 0", 0)])
def test_exit_codes_pass_through(pybuild, image, script, code):
    assert pybuild("run", "--rm", image, "sh", "-c", script, check=False).returncode == code


def test_exec_failures_like_docker(pybuild, image):
    proc = pybuild("run", "--rm", image, "nosuchcmd", check=False)
    assert proc.returncode == 127
    assert proc.stderr.decode().strip() == 'pybuild: error: exec: "nosuchcmd": executable file not found in $PATH'
    proc = pybuild("run", "--rm", image, "/etc/passwd", check=False)
    assert proc.returncode == 126 and b"permission denied" in proc.stderr


def test_killed_by_signal_is_128_plus_signal(pybuild, image):
    assert pybuild("run", "--rm", "--init", image, "sh", "-c", "kill -TERM $$", check=False).returncode == 143


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_reach_the_container(root, image, sig):
    script = f"trap 'echo got; exit 42' {sig.name.removeprefix('SIG')}; echo ready; while true; do sleep 0.05; done"
    proc = subprocess.Popen([PYBUILD, "run", "--rm", image, "sh", "-c", script], stdout=subprocess.PIPE,
                            env={**os.environ, "PYBUILD_ROOT": str(root)})
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 42
    assert proc.stdout.read() == b"got\n"


def test_init_reaps_zombies_and_forwards(pybuild, image):
    # the orphaned grandchild stays a zombie (its /proc entry stays) unless pid 1 reaps it;
    # the loop ends when it is gone, so a pass means "reaped", never "not yet exited"
    script = ("sh -c 'true & echo $! > /tmp/orphan'; pid=$(cat /tmp/orphan); i=0; "
              "while [ -e /proc/$pid ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
              "[ -e /proc/$pid ] && echo zombie || echo reaped")
    assert out(pybuild("run", "--rm", "--init", image, "sh", "-c", script)).strip() == "reaped"
    assert out(pybuild("run", "--rm", "--init", image, "sh", "-c", "echo $$")).strip() == "2"


def test_stdin_with_i_and_devnull_without(pybuild, image):
    assert out(pybuild("run", "--rm", "-i", image, "cat", input=b"piped")) == "piped"
    assert out(pybuild("run", "--rm", image, "cat", input=b"piped")) == ""


def test_tty_gives_a_terminal(pybuild, image):
    proc = pybuild("run", "--rm", "-t", image, "sh", "-c", "test -t 0 && test -t 1 && echo tty; tty; echo $TERM")
    # the pty lives in the container's own devpts, so ttyname() works inside
    assert out(proc).replace("\r", "").splitlines() == ["tty", "/dev/pts/0", "xterm"]


# ---- lifecycle ---------------------------------------------------------------------



def test_detached_logs_stop_rm(pybuild, root, image):
    cid = out(pybuild("run", "-d", "--name", "web", image, "sh", "-c",
                      "echo out; echo err >&2; trap 'echo bye; exit 7' TERM; while true; do sleep 0.05; done")).strip()
    assert len(cid) == 64
    assert wait_for(lambda: "web" in out(pybuild("ps")))
    assert out(pybuild("ps", "-q")).split() == [cid[:12]]
    wait_for(lambda: b"err" in pybuild("logs", "web").stderr)
    logs = pybuild("logs", "web")
    assert out(logs) == "out\n" and logs.stderr == b"err\n"
    assert out(pybuild("stop", "-t", "5", "web")) == "web\n"
    assert container_state(root, "web")["exit_code"] == 7
    assert out(pybuild("logs", "web")) == "out\nbye\n"
    assert "web" not in out(pybuild("ps"))
    assert "Exited (7)" in out(pybuild("ps", "-a"))
    assert out(pybuild("wait", "web")) == "7\n"
    pybuild("rm", "web")
    assert out(pybuild("ps", "-a", "-q")) == ""
    assert pybuild("logs", "web", check=False).returncode == 1


def test_stop_kills_after_timeout(pybuild, root, image):
    """stop sends SIGTERM first (the trap logs it and carries on), then SIGKILL."""
    pybuild("run", "-d", "--name", "stubborn", image, "sh", "-c",
            "trap 'echo term' TERM; echo ready; while true; do sleep 0.05; done")
    wait_for(lambda: out(pybuild("logs", "stubborn")) == "ready\n")
    pybuild("stop", "-t", "2", "stubborn")
    assert container_state(root, "stubborn")["exit_code"] == 137
    assert out(pybuild("logs", "stubborn")) == "ready\nterm\n"


def test_stop_signal_from_image(pybuild, root, image):
    name = image_variant(root, image, "stopper:1", StopSignal="SIGUSR1")
    pybuild("run", "-d", "--name", "u", name, "sh", "-c", "trap 'exit 9' USR1; while true; do sleep 0.05; done")
    wait_for(lambda: container_state(root, "u").get("status") == "running")
    pybuild("stop", "-t", "10", "u")
    assert container_state(root, "u")["exit_code"] == 9


def test_exec_enters_namespaces_and_cgroup(pybuild, root, image):
    pybuild("run", "-d", "--name", "box", "--hostname", "boxhost", "--pids-limit", "50", image, "sleep", "100000")
    wait_for(lambda: container_state(root, "box").get("status") == "running")
    proc = pybuild("exec", "box", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/cgroup | grep pids")
    lines = out(proc).splitlines()
    assert lines[0] == "boxhost"
    assert lines[1].strip() == "sleep 100000"
    assert lines[2].endswith("/pybuild/" + container_id(root, "box"))
    assert pybuild("exec", "box", "sh", "-c", "exit 5", check=False).returncode == 5
    assert out(pybuild("exec", "-u", "app", "-e", "X=1", "-w", "/tmp", "box", "sh", "-c", "id -u; echo $X; pwd")).split() == ["1000", "1", "/tmp"]
    assert pybuild("exec", "box", "nosuch", check=False).returncode == 127
    pybuild("kill", "box")
    wait_for(lambda: container_state(root, "box").get("status") == "exited")
    assert pybuild("exec", "box", "true", check=False).returncode == 1



def test_rm_refuses_running_unless_forced(pybuild, root, image):
    pybuild("run", "-d", "--name", "busy", image, "sleep", "100000")
    wait_for(lambda: container_state(root, "busy").get("status") == "running")
    proc = pybuild("rm", "busy", check=False)
    assert proc.returncode == 1 and b"is running" in proc.stderr
    pybuild("rm", "-f", "busy")
    assert out(pybuild("ps", "-a", "-q")) == ""


def test_duplicate_name_rejected(pybuild, image):
    pybuild("run", "--name", "same", image, "true")
    proc = pybuild("run", "--name", "same", image, "true", check=False)
    assert proc.returncode == 125 and b"already in use" in proc.stderr


def test_foreground_run_keeps_logs_and_state(pybuild, root, image):
    pybuild("run", "--name", "fg", image, "sh", "-c", "echo hello; exit 3", check=False)
    assert container_state(root, "fg")["exit_code"] == 3
    assert out(pybuild("logs", "fg")) == "hello\n"


def test_rm_leaves_nothing(pybuild, root, image):
    """--rm removes the container's record and its cgroups (read from inside: where it ran)."""
    inside = out(pybuild("run", "--rm", image, "cat", "/proc/self/cgroup"))
    assert [n for n in os.listdir(root / "containers") if not n.startswith(".lock")] == []
    ids = {line.rsplit("/", 1)[1] for line in inside.splitlines()} - {""}
    assert len(ids) == 1 and len(next(iter(ids))) == 64, inside  # the container's own cgroup
    cid = ids.pop()
    for dirpath, dirnames, _files in os.walk("/sys/fs/cgroup"):
        assert cid not in dirnames, f"{dirpath}/{cid} left behind"
        if dirpath.count("/") >= 5:  # deep enough for */pybuild/<cid>; do not walk every cgroup
            dirnames.clear()


def test_crashed_owner_is_detected_and_cleaned(pybuild, root, image):
    """A killed monitor leaves a 'running' record: the next command finds it, kills, cleans."""
    pybuild("run", "-d", "--name", "orphan", image, "sleep", "60")
    wait_for(lambda: container_state(root, "orphan").get("status") == "running")
    state = container_state(root, "orphan")
    pids = cgroup_dir(state["pid"], "pids")  # v1 or v2; fails if the container has none
    assert pids.name == container_id(root, "orphan")
    os.kill(state["owner_pid"], signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{state['pid']}"))  # pdeathsig takes the container down
    assert "Exited (255)" in out(pybuild("ps", "-a"))
    assert not pids.exists()


def test_images_in_use(pybuild, root, image):
    from registry.store import Store
    from runner.containers import images_in_use

    pybuild("run", "--name", "keep", image, "true")
    assert images_in_use(str(root)) == {Store(root).image(image).id}
    pybuild("rm", "keep")
    assert images_in_use(str(root)) == set()


@pytest.mark.registry
def test_missing_image_is_pulled(plain_registry, pybuild, image, tmp_path):
    from conftest import CLI

    pybuild.env.update(plain_registry.env)
    ref = f"{plain_registry.host}/runner/busybox:1"
    pybuild("tag", image, ref)
    pybuild("push", ref)
    other = CLI(tmp_path / "fresh")
    other.env.update(plain_registry.env)
    proc = other("run", "--rm", ref, "echo", "pulled and ran")
    assert proc.stdout == b"pulled and ran\n"
    assert b"Unable to find image" in proc.stderr
    assert other("run", "--rm", ref, "true").stderr == b""  # the second run finds it
    missing = other("run", "--rm", f"{plain_registry.host}/runner/nothing:1", "true", check=False)
    assert missing.returncode != 0 and missing.stderr.count(b"\n") <= 2


def test_retag_is_seen_by_the_next_run(pybuild, root, image):
    """The run path's image cache is invalidated by any tag change."""
    image_variant(root, image, "moving:1", Cmd=["echo", "first"])
    assert out(pybuild("run", "--rm", "moving:1")) == "first\n"
    assert out(pybuild("run", "--rm", "moving:1")) == "first\n"  # from the cache
    image_variant(root, image, "moving:1", Cmd=["echo", "second"])
    assert out(pybuild("run", "--rm", "moving:1")) == "second\n"


def test_kill_sends_the_signal(pybuild, root, image):
    pybuild("run", "-d", "--name", "k", image, "sh", "-c", "trap 'exit 9' USR1; while true; do sleep 0.05; done")
    wait_for(lambda: container_state(root, "k").get("status") == "running")
    assert out(pybuild("kill", "-s", "USR1", "k")) == "k\n"
    assert out(pybuild("wait", "k")) == "9\n"
    proc = pybuild("kill", "k", check=False)
    assert proc.returncode == 1 and b"not running" in proc.stderr


def test_run_path_imports_stay_light(pybuild, root, image):
    """A cached `pybuild run` must not import the store, the registry client or heavy libraries."""
    import sys

    pybuild("run", "--rm", image, "true")  # unpack and fill the run cache
    probe = ("import sys; from builder.cli import main; code = main(['run', '--rm', sys.argv[1], 'true']); "
             "print(' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe, image], capture_output=True,
                          env={**os.environ, "PYBUILD_ROOT": str(root)}, check=True)
    loaded = set(proc.stdout.decode().split())
    heavy = {"registry.store", "registry.remote", "runner.snapshots", "httpx", "rich", "zstandard", "isal",
             "dataclasses", "typing", "pathlib", "hashlib", "secrets", "dockerfile_parse"}
    assert (loaded & heavy) - _site_imports() == set()


def _site_imports() -> set[str]:
    """Modules the interpreter's own start-up (site, an editable-install finder) already loads."""
    import sys

    proc = subprocess.run([sys.executable, "-c", "import sys; print(' '.join(sorted(sys.modules)))"],
                          capture_output=True, check=True)
    return set(proc.stdout.decode().split())
