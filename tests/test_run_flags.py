"""``pybuild run`` flags of daily use (labels, --stop-timeout, --pull), against ``docker run``
on the same image where docker 20.10 has them."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from runner_helpers import container_id, image_variant, needs_root, wait_for

pytestmark = needs_root


@pytest.fixture(scope="module")
def docker_labelled(docker, busybox_tar):
    name = f"pybuild-flags:{os.getpid()}"
    subprocess.run([docker, "import", "--change", "LABEL from.image=yes", str(busybox_tar), name],
                   check=True, capture_output=True)
    yield name
    subprocess.run([docker, "rmi", "-f", name], capture_output=True)


def names_column(text: str) -> list[str]:
    return sorted(line.split()[-1] for line in text.splitlines()[1:])


def test_labels_and_ps_filter_same_as_docker(pybuild, root, busybox_image, docker_labelled, tmp_path):
    image = image_variant(root, busybox_image, "labelled:1", Labels={"from.image": "yes"})
    label_file = tmp_path / "labels"
    label_file.write_text("# team labels\nteam=web\n\ntier\n")
    tag = uuid.uuid4().hex[:8]
    runs = {f"a{tag}": ["-l", "env=prod", "--label-file", str(label_file)], f"b{tag}": ["--label", "env=dev"],
            f"c{tag}": ["-l", "from.image=no"]}
    try:
        for name, flags in runs.items():
            pybuild("run", "--name", name, *flags, image, "true")
            subprocess.run(["docker", "run", "--network", "host", "--name", name, *flags, docker_labelled, "true"],
                           check=True, capture_output=True)
        for filters in (["label=env=prod"], ["label=env"], ["label=team=web", "label=tier"], ["label=from.image=yes"],
                        ["label=env", "label=from.image=yes"], ["label=nosuch"]):
            args = [a for f in filters for a in ("--filter", f)]
            mine = names_column(pybuild("ps", "-a", *args).stdout.decode())
            theirs = subprocess.run(["docker", "ps", "-a", *args, "--format", "x {{.Names}}"], capture_output=True,
                                    text=True, check=True).stdout
            assert mine == sorted(n for n in (line.split()[-1] for line in theirs.splitlines()) if n.endswith(tag)), filters
    finally:
        subprocess.run(["docker", "rm", "-f", *runs], capture_output=True)


def test_bad_filter_is_a_one_line_error(pybuild):
    proc = pybuild("ps", "--filter", "volume=data", check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and len(err.strip().splitlines()) == 1 and "label=" in err and "Traceback" not in err


def test_pull_never_same_exit_code_as_docker(pybuild, docker):
    missing = f"pybuild-missing-{uuid.uuid4().hex[:8]}:latest"
    theirs = subprocess.run([docker, "run", "--rm", "--pull=never", missing, "true"], capture_output=True)
    mine = pybuild("run", "--rm", "--pull", "never", missing, "true", check=False)
    assert mine.returncode == theirs.returncode == 125
    assert "--pull=never" in mine.stderr.decode() and b"Unable to find image" not in mine.stderr
    bad = pybuild("run", "--rm", "--pull", "sometimes", missing, "true", check=False)
    assert bad.returncode == 125 and "use always, missing or never" in bad.stderr.decode()


def test_stop_timeout_is_the_containers_default_for_stop(pybuild, busybox_image):
    # sleep as pid 1 ignores SIGTERM: only the SIGKILL after the timeout ends it
    pybuild("run", "-d", "--name", "slow", "--stop-timeout", "0", busybox_image, "sleep", "1000")
    pybuild("stop", "slow", timeout=8)  # the default 10 s would overrun this
    assert pybuild("wait", "slow").stdout.decode().strip() == "137"


def test_restart_on_failure_same_as_docker(pybuild, busybox_image, docker_labelled, tmp_path):
    """``on-failure:2``: three runs in all, the last exit code kept, RestartCount 2 (as docker's)."""
    script = "echo run >> /v/count; exit 3"
    mine_dir, their_dir = tmp_path / "mine", tmp_path / "theirs"
    mine_dir.mkdir()
    their_dir.mkdir()
    name = f"restart-{uuid.uuid4().hex[:8]}"
    pybuild("run", "-d", "--name", name, "--restart", "on-failure:2", "-v", f"{mine_dir}:/v", busybox_image,
            "sh", "-c", script)
    try:
        subprocess.run(["docker", "run", "-d", "--network", "host", "--name", name, "--restart", "on-failure:2",
                        "-v", f"{their_dir}:/v", docker_labelled, "sh", "-c", script], check=True, capture_output=True)
        theirs = subprocess.run(["docker", "wait", name], capture_output=True, text=True, check=True).stdout
        # docker wait returns at the first exit; RestartCount reaches 2 when the last run ended
        for _ in range(10):  # each docker wait returns at one exit: three runs at most
            status = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}} {{.State.Restarting}} "
                                     "{{.RestartCount}}", name], capture_output=True, text=True).stdout.split()
            if status == ["false", "false", "2"]:
                break
            subprocess.run(["docker", "wait", name], capture_output=True)
        else:
            raise AssertionError(f"docker's container did not settle: {status}")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    assert pybuild("wait", name).stdout.decode().strip() == theirs.strip() == "3"
    assert (mine_dir / "count").read_text() == (their_dir / "count").read_text() == "run\nrun\nrun\n"
    state = json.loads((pybuild.root / "containers" / container_id(pybuild.root, name) / "state.json").read_text())
    assert state["restart_count"] == 2 and state["status"] == "exited"


def test_restart_always_until_stopped(pybuild, busybox_image, tmp_path):
    # the third run stays up; 'stop' ends it for good (no fourth run)
    script = "echo run >> /v/count; [ $(wc -l < /v/count) -ge 3 ] && exec sleep 1000; exit 0"
    pybuild("run", "-d", "--name", "always", "--restart", "always", "-v", f"{tmp_path}:/v", busybox_image,
            "sh", "-c", script)
    wait_for(lambda: (tmp_path / "count").exists() and (tmp_path / "count").read_text() == "run\n" * 3
             and "Up" in pybuild("ps").stdout.decode(), timeout=30)
    pybuild("stop", "-t", "0", "always")
    assert pybuild("wait", "always").stdout.decode().strip() == "137"
    assert (tmp_path / "count").read_text() == "run\n" * 3


@pytest.mark.parametrize("flags,message", [
    (["--restart", "sometimes"], "invalid restart policy"),
    (["--restart", "always:3"], "invalid restart policy"),
    (["--rm", "-d", "--restart", "always"], "conflicting options: --restart and --rm"),
    (["--restart", "always"], "--restart needs -d"),
])
def test_bad_restart_policies(pybuild, busybox_image, flags, message):
    proc = pybuild("run", *flags, busybox_image, "true", check=False)
    assert proc.returncode == 125 and message in proc.stderr.decode()


@pytest.mark.parametrize("flags", [["--ulimit", "nofile=1024:2048"], ["--ulimit", "core=0", "--ulimit", "nproc=500:600"],
                                   ["--ulimit", "stack=8388608"]])
def test_ulimit_same_as_docker(pybuild, busybox_image, docker_labelled, flags):
    script = "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hu; ulimit -s"
    mine = pybuild("run", "--rm", *flags, busybox_image, "sh", "-c", script).stdout.decode()
    theirs = subprocess.run(["docker", "run", "--rm", "--network", "host", *flags, docker_labelled, "sh", "-c", script],
                            capture_output=True, text=True, check=True).stdout
    changed = {f.split("=")[0] for f in flags if "=" in f}
    lines = dict(zip(["nofile", "nofile-hard", "core", "nproc", "stack"], zip(mine.split(), theirs.split())))
    for key, (ours, docker_value) in lines.items():
        if key.split("-")[0] in changed:  # limits not given differ by design: docker sets its own defaults
            assert ours == docker_value, (key, mine, theirs)


def test_ulimit_above_the_hosts_hard_limit_is_refused(pybuild, busybox_image):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    proc = pybuild("run", "--rm", "--ulimit", f"nofile={hard + 1}", busybox_image, "true", check=False)
    assert proc.returncode == 125 and f"above this host's ({hard})" in proc.stderr.decode()
    for bad in ("nofiles=10", "nofile=ten", "nofile=20:10"):
        proc = pybuild("run", "--rm", "--ulimit", bad, busybox_image, "true", check=False)
        assert proc.returncode == 125 and "invalid --ulimit" in proc.stderr.decode(), bad


@pytest.mark.parametrize("flags", [["--group-add", "app"], ["--group-add", "4242", "--group-add", "nogroup"],
                                   ["-u", "app", "--group-add", "root"], ["--group-add", "ghost"]])
def test_group_add_same_as_docker(pybuild, busybox_image, docker_labelled, flags):
    mine = pybuild("run", "--rm", *flags, busybox_image, "id", check=False)
    theirs = subprocess.run(["docker", "run", "--rm", "--network", "host", *flags, docker_labelled, "id"],
                            capture_output=True, text=True)
    assert mine.returncode == theirs.returncode
    if theirs.returncode == 0:
        assert mine.stdout.decode() == theirs.stdout


@pytest.mark.parametrize("flags,path", [(["--device", "/dev/fuse"], "/dev/fuse"),
                                        (["--device", "/dev/fuse:/dev/myfuse"], "/dev/myfuse"),
                                        (["--device", "/dev/loop-control:/dev/sub/lc"], "/dev/sub/lc")])
def test_device_same_as_docker(pybuild, busybox_image, docker_labelled, flags, path):
    if not os.path.exists(flags[1].split(":")[0]):
        pytest.skip(f"{flags[1]} is not on this host")
    script = f"stat -c '%F %t:%T' {path}"
    mine = pybuild("run", "--rm", *flags, busybox_image, "sh", "-c", script).stdout.decode()
    theirs = subprocess.run(["docker", "run", "--rm", "--network", "host", *flags, docker_labelled, "sh", "-c", script],
                            capture_output=True, text=True, check=True).stdout
    assert mine == theirs and mine.startswith("character special file")


def test_device_errors(pybuild, busybox_image):
    for bad, message in (("/dev/nosuchdevice", "no such device"), ("/etc/passwd", "not a device node"),
                         ("/dev/null:/etc/x", "must be a file under /dev")):
        proc = pybuild("run", "--rm", "--device", bad, busybox_image, "true", check=False)
        assert proc.returncode == 125 and message in proc.stderr.decode(), bad


PRIVILEGED_PROBE = ("grep -E '^(CapEff|Seccomp):' /proc/self/status; mount | grep ' /sys ' | grep -o '(r[ow]'; "
                    "mount | grep -c ' /proc/sys ' ; head -c 1 /proc/timer_list | wc -c; ls /dev/loop-control")


def test_privileged(pybuild, busybox_image, docker_labelled):
    with open("/proc/self/status") as fh:
        bounding = next(line.split()[1] for line in fh if line.startswith("CapBnd:"))
    out = pybuild("run", "--rm", "--privileged", busybox_image, "sh", "-c", PRIVILEGED_PROBE).stdout.decode().split()
    # every capability the host lets us hand on, no seccomp, writable /sys, no read-only /proc/sys,
    # nothing masked, the host's devices
    assert out == ["CapEff:", bounding, "Seccomp:", "0", "(rw", "0", "1", "/dev/loop-control"]
    plain = pybuild("run", "--rm", busybox_image, "sh", "-c", PRIVILEGED_PROBE, check=False).stdout.decode().split()
    assert plain[3] == "2" and plain[4:7] == ["(ro", "1", "0"]  # the same probe without the flag
    theirs = subprocess.run(["docker", "run", "--rm", "--network", "host", "--privileged", docker_labelled, "sh", "-c",
                             PRIVILEGED_PROBE], capture_output=True, text=True)
    if theirs.returncode != 0:  # docker asks for every capability, even those this host withholds
        assert "unable to apply caps" in theirs.stderr
    else:
        assert theirs.stdout.split() == out


def test_rm_force_ends_a_restart_policy(pybuild, busybox_image):
    """rm -f kills with SIGKILL (a failure for on-failure): it must not be restarted, nor wait for it."""
    pybuild("run", "-d", "--name", "sup", "--restart", "on-failure:3", busybox_image, "sleep", "300")
    pybuild("rm", "-f", "sup", timeout=60)
    assert pybuild("ps", "-aq").stdout == b""
