"""The sandbox API the builder's RUN steps use: SandboxSpec, run/start, Snapshots."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from registry.oci import chain_ids
from registry.store import Store
from runner import imageconfig, sandbox, users
from runner.snapshots import Snapshots
from runner.spec import Mount, SandboxSpec
from runner_helpers import bare_spec, needs_root

pytestmark = needs_root


def run_capture(spec: SandboxSpec, tmp_path: Path) -> tuple[int, str, str]:
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        spec.stdout, spec.stderr = out.fileno(), err.fileno()
        code = sandbox.run(spec)
    return code, out_path.read_text(), err_path.read_text()


def test_run_exit_code_and_output(tmp_path, busybox_rootfs):
    spec = bare_spec(tmp_path, busybox_rootfs, ["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    assert run_capture(spec, tmp_path) == (3, "hello\n", "oops\n")


def test_upper_dir_is_the_diff_and_etc_files_stay_out(tmp_path, busybox_rootfs):
    """What a RUN step changes lands in upperdir in overlay format; generated files do not."""
    script = "echo new > /etc/newfile; rm /etc/group; mkdir -p /opt/x; cat /etc/hosts >/dev/null; echo 1.2.3.4 h >> /etc/hosts"
    spec = bare_spec(tmp_path, busybox_rootfs, ["sh", "-c", script])
    assert sandbox.run(spec) == 0
    upper = tmp_path / "upper"
    assert (upper / "etc" / "newfile").read_text() == "new\n"
    whiteout = os.lstat(upper / "etc" / "group")
    assert os.major(whiteout.st_rdev) == 0 and os.minor(whiteout.st_rdev) == 0  # overlay whiteout
    assert (upper / "opt" / "x").is_dir()
    assert sorted(os.listdir(upper / "etc")) == ["group", "newfile"]  # no hosts, hostname, resolv.conf
    assert not (upper / "proc").exists() and not (upper / "dev").exists()
    assert (busybox_rootfs / "etc" / "group").exists()  # the lowerdir is untouched


def test_exec_errors_reported_in_one_line(tmp_path, busybox_rootfs):
    with pytest.raises(sandbox.SandboxError) as info:
        sandbox.run(bare_spec(tmp_path, busybox_rootfs, ["nope"]))
    assert str(info.value) == 'exec: "nope": executable file not found in $PATH' and info.value.exit_code == 127
    with pytest.raises(sandbox.SandboxError) as info:
        sandbox.run(bare_spec(tmp_path, busybox_rootfs, ["/etc"]))
    assert info.value.exit_code == 126


def test_bad_bind_source_is_a_clear_error(tmp_path, busybox_rootfs):
    spec = bare_spec(tmp_path, busybox_rootfs, ["true"], mounts=[Mount(target="/x", source=str(tmp_path / "missing"))])
    with pytest.raises(sandbox.SandboxError, match="bind source path does not exist"):
        sandbox.run(spec)


def test_threaded_caller_starts_containers(tmp_path, busybox_rootfs):
    """Concurrent starts from threads (as build stages do): the shim is spawned, never forked."""
    results: dict[int, tuple] = {}

    def one(i: int) -> None:
        d = tmp_path / f"t{i}"
        d.mkdir()
        results[i] = run_capture(bare_spec(d, busybox_rootfs, ["sh", "-c", f"echo {i}; exit {i}"]), d)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: (i, f"{i}\n", "") for i in range(3)}


def test_mounts_secret_cache_tmpfs(tmp_path, busybox_rootfs):
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    cache = tmp_path / "cache"
    cache.mkdir()
    mounts = [Mount(target="/run/secrets/token", source=str(secret), readonly=True),
              Mount(target="/root/.cache", source=str(cache)), Mount(target="/scratch", type="tmpfs")]
    script = "cat /run/secrets/token; echo c > /root/.cache/f; echo t > /scratch/f; echo x > /run/secrets/token"
    spec = bare_spec(tmp_path, busybox_rootfs, ["sh", "-c", script], mounts=mounts)
    code, out, err = run_capture(spec, tmp_path)
    assert out == "s3cret" and "Read-only" in err
    assert (cache / "f").read_text() == "c\n"
    assert not (tmp_path / "upper" / "scratch" / "f").exists()


def test_mount_target_through_symlink_stays_in_rootfs(tmp_path, busybox_rootfs):
    """An image symlink pointing outside (/evil -> /..//tmp/x) is resolved inside the rootfs."""
    lower = tmp_path / "lower"
    lower.mkdir()
    (lower / "evil").symlink_to(f"/../../..{tmp_path}/outside")
    src = tmp_path / "src"
    src.mkdir()
    spec = bare_spec(tmp_path, busybox_rootfs, ["true"], mounts=[Mount(target="/evil/m", source=str(src))])
    spec.lowerdirs = [str(busybox_rootfs), str(lower)]
    assert sandbox.run(spec) == 0
    assert not (tmp_path / "outside").exists()
    assert (tmp_path / "upper" / str(tmp_path).lstrip("/") / "outside" / "m").is_dir()


def test_many_layers_fit_the_mount_options(tmp_path, root, busybox_rootfs):
    """150 lowerdirs (deeper than docker's 128 limit) mount thanks to short relative names."""
    snaps = Snapshots(root)
    ids = chain_ids([f"sha256:{i:064x}" for i in range(150)])
    for i, chain in enumerate(ids):
        layer = root / "tmp" / f"layer{i}"
        (layer / "layers").mkdir(parents=True)
        (layer / "layers" / f"f{i}").write_text(str(i))
        snaps.adopt(chain, layer)
    base = snaps.adopt("sha256:" + "bb" * 32, shutil.copytree(busybox_rootfs, root / "tmp" / "bb", symlinks=True))
    lowers = [str(base)] + [str(snaps.path(c)) for c in ids]
    spec = bare_spec(tmp_path, busybox_rootfs, ["sh", "-c", "ls /layers | wc -l"])
    spec.lowerdirs = lowers
    assert run_capture(spec, tmp_path)[:2] == (0, "150\n")


def test_snapshots_ensure_adopt_prune(root, busybox_image, pybuild):
    store = Store(root)
    image = store.image(busybox_image)
    snaps = Snapshots(root)
    paths = snaps.ensure(store, image)
    assert len(paths) == 1 and (paths[0] / "bin" / "busybox").is_file()
    inode = paths[0].stat().st_ino
    assert snaps.ensure(store, image) == paths and paths[0].stat().st_ino == inode  # not unpacked again
    upper = root / "tmp" / "upper"
    (upper / "added").mkdir(parents=True)
    adopted = snaps.adopt("sha256:" + "ab" * 32, upper)
    assert (adopted / "added").is_dir() and not upper.exists()  # renamed, not copied
    (root / "snapshots" / "run-cache.json").write_text("{}")
    removed = snaps.prune(chain_ids(image.diff_ids))
    assert removed == ["sha256:" + "ab" * 32]
    assert (root / "snapshots" / "run-cache.json").exists()
    assert snaps.chain_ids() == chain_ids(image.diff_ids)


def test_snapshots_concurrent_ensure(root, busybox_image, pybuild):
    store = Store(root)
    image = store.image(busybox_image)
    errors = []

    def worker() -> None:
        try:
            Snapshots(root).ensure(store, image)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p for p in os.listdir(root / "snapshots") if p.startswith(".tmp")] == []


# ---- pure rules -------------------------------------------------------------------------


def test_user_rules(tmp_path):
    passwd = tmp_path / "passwd"
    group = tmp_path / "group"
    passwd.write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    group.write_text("root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nstaff:x:50:\n")
    r = lambda spec: users.resolve(spec, str(passwd), str(group))  # noqa: E731
    assert r("") == users.ExecUser(0, 0, [0, 10], "/root")
    assert r("app") == users.ExecUser(1000, 1000, [1000, 10], "/home/app")
    assert r("app:staff") == users.ExecUser(1000, 50, [50], "/home/app")
    assert r("77") == users.ExecUser(77, 0, [0], "/")
    assert r("77:88") == users.ExecUser(77, 88, [88], "/")
    with pytest.raises(users.UserError):
        r("ghost")
    with pytest.raises(users.UserError):
        r("app:ghosts")


def test_sizes_and_signals():
    assert imageconfig.parse_size("64m") == 64 << 20
    assert imageconfig.parse_size("1.5g") == 3 << 29
    assert imageconfig.parse_size("100000") == 100000
    for bad in ("", "m", "ten", "-5m"):
        with pytest.raises(Exception, match="invalid"):
            imageconfig.parse_size(bad)
    assert imageconfig.parse_signal("SIGKILL") == 9
    assert imageconfig.parse_signal("usr1") == 10
    assert imageconfig.parse_signal("RTMIN+2") == 36


def test_state_files_are_not_in_lowerdirs(tmp_path, busybox_rootfs):
    before = sorted(p.name for p in busybox_rootfs.iterdir())
    sandbox.run(bare_spec(tmp_path, busybox_rootfs, ["true"]))
    assert sorted(p.name for p in busybox_rootfs.iterdir()) == before
    shutil.rmtree(tmp_path / "state")


def test_renamed_lower_directory_is_copied_up_whole(tmp_path, busybox_rootfs):
    """No redirect xattrs: the upper dir alone describes the change (whatever the kernel default)."""
    lower = tmp_path / "lower"
    (lower / "data" / "sub").mkdir(parents=True)
    (lower / "data" / "sub" / "f").write_text("content")
    spec = bare_spec(tmp_path, busybox_rootfs, ["/bin/mv", "/data", "/moved"])
    spec.lowerdirs = [str(busybox_rootfs), str(lower)]
    assert sandbox.run(spec) == 0
    upper = tmp_path / "upper"
    assert (upper / "moved" / "sub" / "f").read_text() == "content"
    assert os.major(os.lstat(upper / "data").st_rdev) == 0 and not (upper / "data").is_dir()  # whiteout
    assert not any(name.startswith("trusted.overlay.redirect") for name in os.listxattr(upper / "moved"))
