"""Attacks from inside a container; each must fail, and the host must stay fine.

Every attack also has a control where it makes sense (the same probe with the
protection lifted, or from the host), so a broken sandbox makes the test fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading

import pytest

from registry.store import Store
from runner.snapshots import Snapshots
from runner_helpers import cgroup_dir, container_id, container_state, needs_root, wait_for

pytestmark = needs_root


@pytest.fixture
def image(busybox_image: str) -> str:
    return busybox_image


def run(pybuild, *args, **kw) -> subprocess.CompletedProcess:
    return pybuild("run", "--rm", *args, check=False, **kw)


def text(proc) -> str:
    return proc.stdout.decode() + proc.stderr.decode()


def test_cannot_see_or_signal_host_processes(pybuild, image):
    sentinel = subprocess.Popen(["sleep", "300"])
    try:
        proc = run(pybuild, image, "sh", "-c", f"ps -o pid,args; kill -9 {sentinel.pid}; echo kill=$?; ls /proc/{sentinel.pid}")
        out = proc.stdout.decode()
        assert "sleep 300" not in out
        assert "kill=1" in out
        assert len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) <= 3  # sh, ps (and a subshell)
        assert sentinel.poll() is None  # alive
    finally:
        sentinel.kill()
        sentinel.wait()


def test_cannot_mount_or_make_namespaces(pybuild, image, tmp_path):
    script = ("mount -t tmpfs none /mnt; echo m=$?; mount --bind /bin /mnt; echo b=$?; "
              "mount -o remount,rw /proc/sys; echo r=$?; unshare -m true; echo u=$?; "
              "umount /etc/hosts; echo um=$?")
    out = run(pybuild, image, "sh", "-c", script).stdout.decode().split()
    assert out == ["m=1", "b=1", "r=1", "u=1", "um=1"]


def test_writes_stay_in_the_container_layer(pybuild, root, image, tmp_path):
    """Deleting and overwriting system files touches neither the snapshot nor the host."""
    store = Store(root)
    lower = Snapshots(root).ensure(store, store.image(image))[0]
    before = (lower / "bin" / "busybox").stat()
    proc = run(pybuild, image, "sh", "-c", "rm -rf /bin/sh /etc/passwd; echo x > /bin/busybox 2>/dev/null; "
               "echo hacked > /etc/hostname; echo hacked > /etc/hosts; echo done")
    assert proc.stdout.decode().endswith("done\n")
    assert (lower / "bin" / "busybox").stat().st_size == before.st_size
    assert (lower / "etc" / "passwd").exists() and (lower / "bin" / "sh").is_symlink()
    assert "hacked" not in open("/etc/hostname").read() and "hacked" not in open("/etc/hosts").read()
    assert run(pybuild, image, "sh", "-c", "echo again").stdout == b"again\n"


def test_volume_symlinks_do_not_escape(pybuild, image, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    target = tmp_path / "host-secret"
    target.write_text("keep")
    (vol / "link").symlink_to(target)  # absolute host path: resolves inside the container
    proc = run(pybuild, "-v", f"{vol}:/data", image, "sh", "-c", "echo pwned > /data/link; echo rc=$?")
    assert target.read_text() == "keep"
    assert "rc=" in proc.stdout.decode()


def test_cannot_read_host_disk_through_mknod(pybuild, image):
    disk = os.stat("/").st_dev
    major, minor = os.major(disk), os.minor(disk)
    script = (f"mknod /tmp/disk b {major} {minor} && head -c 512 /tmp/disk | wc -c; "
              f"mknod /dev/disk b {major} {minor} && head -c 512 /dev/disk | wc -c; "
              f"mknod /dev/shm/disk b {major} {minor} && head -c 512 /dev/shm/disk | wc -c; echo end")
    proc = run(pybuild, image, "sh", "-c", script)
    assert "512" not in proc.stdout.decode()
    assert proc.stdout.decode().strip().endswith("end")


def _serve_once(sock: socket.socket, hits: list[bytes]) -> None:
    sock.settimeout(15)
    try:
        conn, _ = sock.accept()
        with conn:
            conn.sendall(b"host-secret\n")
            hits.append(b"hit")
    except OSError:
        pass


def test_network_none_cannot_reach_host_loopback(pybuild, image):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    hits: list[bytes] = []
    thread = threading.Thread(target=_serve_once, args=(server, hits))
    thread.start()
    try:
        probe = f"nc -w 2 127.0.0.1 {port} </dev/null; echo rc=$?"
        isolated = run(pybuild, "--network", "none", image, "sh", "-c", probe)
        assert "host-secret" not in isolated.stdout.decode() and hits == []
        # control: the same probe over the host network reaches the server
        shared = run(pybuild, "--network", "host", image, "sh", "-c", probe)
        assert "host-secret" in shared.stdout.decode()
    finally:
        server.close()
        thread.join()


def test_cannot_load_kernel_modules(pybuild, image, tmp_path):
    module = tmp_path / "evil.ko"
    module.write_bytes(b"\x7fELF" + b"\0" * 64)
    proc = run(pybuild, "-v", f"{tmp_path}:/m:ro", image, "sh", "-c",
               "insmod /m/evil.ko; echo rc=$?; echo '|/tmp/x' > /proc/sys/kernel/core_pattern; echo rc=$?")
    assert "rc=0" not in proc.stdout.decode()
    assert "not permitted" in text(proc)  # finit_module: no CAP_SYS_MODULE, and seccomp says EPERM
    assert "/tmp/x" not in open("/proc/sys/kernel/core_pattern").read()


def test_proc_sys_and_sysrq_are_read_only_and_paths_masked(pybuild, image):
    script = ("echo 1 > /proc/sys/kernel/sysrq; echo a=$?; echo h > /proc/sysrq-trigger; echo b=$?; "
              "echo x > /proc/sys/kernel/hostname; echo c=$?; echo 1 > /sys/kernel/mm/ksm/run; echo d=$?; "
              "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do "
              "[ -e $f ] && echo $f=$(cat $f | wc -c); done")
    out = run(pybuild, image, "sh", "-c", script).stdout.decode().split()
    assert out[:4] == ["a=1", "b=1", "c=1", "d=1"]
    masked = dict(item.split("=") for item in out[4:])
    host = [f for f in ("/proc/keys", "/proc/timer_list") if os.path.exists(f) and open(f, "rb").read()]
    assert host and all(masked[f] == "0" for f in host)  # bound to /dev/null inside
    assert set(masked.values()) == {"0"}


def test_capabilities_are_cut(pybuild, image):
    out = run(pybuild, image, "sh", "-c", "grep -E 'Cap(Bnd|Eff|Prm|Inh|Amb)|NoNewPrivs|Seccomp:' /proc/self/status").stdout.decode()
    fields = dict(line.split(":\t") for line in out.splitlines())
    assert fields["CapBnd"] == fields["CapEff"] == fields["CapPrm"] == "00000000a80425fb"  # docker's default set
    assert fields["CapInh"] == fields["CapAmb"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1"
    user = run(pybuild, "-u", "1000", image, "grep", "CapEff", "/proc/self/status").stdout.decode()
    assert user.split() == ["CapEff:", "0000000000000000"]
    added = run(pybuild, "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", image, "grep", "CapBnd", "/proc/self/status")
    assert int(added.stdout.split()[1], 16) == (0xA80425FB | 1 << 12) & ~1


def test_seccomp_filter_is_loaded(pybuild, image):
    from runner.security import load_seccomp_module

    if load_seccomp_module() is None:
        pytest.skip("libseccomp's Python binding (python3-seccomp) is not installed")
    out = run(pybuild, image, "grep", "Seccomp:", "/proc/self/status").stdout.decode()
    assert out.split() == ["Seccomp:", "2"]


@pytest.mark.slow
def test_fork_bomb_is_contained_by_pids_limit(pybuild, root, image):
    pybuild("run", "-d", "--name", "bomb", "--pids-limit", "40", image, "sh", "-c", "b() { b | b & }; b; sleep 100000")
    state = wait_for(lambda: container_state(root, "bomb").get("status") == "running" and container_state(root, "bomb"))
    pids = cgroup_dir(state["pid"], "pids")  # v1 or v2, wherever the kernel put it; fails if none
    assert pids.name == container_id(root, "bomb")
    wait_for(lambda: _refused_forks(pids) > 0, timeout=60)  # the bomb has hit the limit
    assert int((pids / "pids.current").read_text()) <= 40
    assert subprocess.run(["true"]).returncode == 0  # the host still forks
    pybuild("rm", "-f", "bomb")
    assert not pids.exists()


def _refused_forks(cgroup) -> int:
    """How many forks the pids controller refused (``max`` in ``pids.events``, v1 and v2)."""
    events = dict(line.split() for line in (cgroup / "pids.events").read_text().splitlines())
    return int(events.get("max", 0))


def test_memory_limit_oom_kills_with_137(pybuild, image):
    proc = run(pybuild, "-m", "32m", "--memory-swap", "32m", image, "sh", "-c",
               "dd if=/dev/zero of=/dev/null bs=128M count=1; echo survived")
    assert proc.stdout == b"survived\n" and b"Killed" in proc.stderr  # dd died, its parent shell did not
    assert b"memory limit" not in proc.stderr
    # the command itself over the limit: exit 137 and a message
    big = run(pybuild, "-m", "32m", "--memory-swap", "32m", image, "sh", "-c",
              "exec dd if=/dev/zero of=/dev/null bs=128M count=1")
    assert big.returncode == 137
    assert b"memory limit" in big.stderr
    assert run(pybuild, "-m", "64m", image, "true").returncode == 0  # the host is fine


@pytest.fixture(scope="module")
def euid_probe(tmp_path_factory):
    """A static binary printing its effective uid (setuid root inside the image)."""
    if not shutil.which("cc"):
        pytest.skip("no C compiler to build the setuid probe")
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text('#include <stdio.h>\n#include <unistd.h>\n'
                               'int main(void){printf("%d\\n",(int)geteuid());return 0;}\n')
    build = subprocess.run(["cc", "-static", "-O2", "-o", str(d / "probe"), str(d / "probe.c")], capture_output=True)
    if build.returncode != 0:
        pytest.skip(f"cannot build a static probe: {build.stderr.decode()[:200]}")
    return d / "probe"


def test_setuid_binary_gives_no_privilege(pybuild, root, busybox_rootfs, euid_probe, tmp_path):
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    shutil.copy(euid_probe, rootfs / "bin" / "suidprobe")
    os.chmod(rootfs / "bin" / "suidprobe", 0o4755)
    pybuild("import", str(rootfs), "suid:1")
    # control: on the host the bit works (run as nobody with setpriv if present)
    if shutil.which("setpriv"):
        copy = tmp_path / "hostprobe"
        shutil.copy(euid_probe, copy)
        os.chmod(copy, 0o4755)
        os.chmod(tmp_path, 0o755)
        host = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(copy)],
                              capture_output=True)
        assert host.stdout == b"0\n"
    inside = run(pybuild, "-u", "1000", "suid:1", "/bin/suidprobe")
    assert inside.stdout == b"1000\n"


def test_rlimits_are_the_hosts_never_raised(pybuild, image):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out = run(pybuild, image, "sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Hn $(( $(ulimit -Hn) + 1 )); echo raise=$?")
    lines = out.stdout.decode().split()
    assert lines[:2] == [str(soft), str(hard)]
    assert lines[2] != "raise=0"
