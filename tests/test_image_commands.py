"""Image commands end to end: import, images, tag, rmi, inspect, history, save, load, fsck."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile

import pytest

from conftest import PYBUILD


def test_import_is_deterministic_with_source_date_epoch(pybuild, busybox_rootfs, busybox_tar):
    env = {"SOURCE_DATE_EPOCH": "0"}
    for compression in ("gzip", "zstd"):
        infos = []
        for n, source in enumerate([busybox_rootfs, busybox_rootfs, busybox_tar, busybox_tar]):
            pybuild("import", "--compression", compression, str(source), f"det-{compression}:{n}", env=env)
            infos.append(json.loads(pybuild("inspect", f"det-{compression}:{n}").stdout)[0])
        for first, second in (infos[0:2], infos[2:4]):
            assert first["Id"] == second["Id"] and first["Descriptor"] == second["Descriptor"], compression
        layers = {info["RootFS"]["Layers"][0] for info in infos}
        assert len(layers) == 1, "a tarball and its directory give the same layer"
        assert infos[0]["Created"] == "1970-01-01T00:00:00Z"
    assert infos[0]["Config"] == {}


def test_images_tag_rmi_history(pybuild, busybox_image):
    pybuild("tag", busybox_image, "localhost:5000/team/app:v1")
    out = pybuild("images").stdout.decode()
    assert "localhost:5000/team/app" in out and "busybox" in out and "IMAGE ID" in out
    ids = pybuild("images", "-q").stdout.decode().split()
    assert len(ids) == 1 and len(ids[0]) == 12
    assert "Untagged: busybox:latest" in pybuild("rmi", "busybox").stdout.decode()
    assert "busybox" not in pybuild("images").stdout.decode()
    removed = pybuild("rmi", "localhost:5000/team/app:v1").stdout.decode()
    assert "Deleted: sha256:" in removed
    assert pybuild("images", "-q").stdout.strip() == b""
    pybuild("prune")
    assert pybuild("fsck").returncode == 0


def test_history_shows_the_import(pybuild, busybox_image):
    out = pybuild("history", busybox_image).stdout.decode()
    assert "pybuild import" in out and "CREATED BY" in out


@pytest.mark.parametrize("content, words", [
    (b"this is not a tarball at all" * 40, "tar"),
    (None, "truncated"),
])
def test_bad_import_input_leaves_store_unchanged(pybuild, busybox_tar, tmp_path, content, words):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(content if content is not None else busybox_tar.read_bytes()[: 300_000])
    proc = pybuild("import", str(bad), "bad:1", check=False)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert err.startswith("pybuild: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert pybuild("images", "-q").stdout.strip() == b""
    assert list((pybuild.root / "tmp").iterdir()) == []


def test_missing_image_is_one_clear_line(pybuild):
    proc = pybuild("inspect", "nosuch:1", check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode().strip() == "pybuild: error: no image 'nosuch:1' in the store; see 'pybuild images' (or pull it)"


def test_invalid_name_is_rejected(pybuild, busybox_rootfs):
    proc = pybuild("import", str(busybox_rootfs), "BusyBox:1", check=False)
    assert proc.returncode != 0 and "lower-case" in proc.stderr.decode()


def test_store_is_readable_by_skopeo_umoci_and_oci_image_tool(pybuild, busybox_image, tmp_path):
    store = pybuild.root / "store"
    out = subprocess.run(["skopeo", "inspect", f"oci:{store}:busybox:latest"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["Architecture"] == "amd64"
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{store}:busybox:latest", str(bundle)], check=True,
                   capture_output=True)
    assert (bundle / "rootfs" / "bin" / "busybox").stat().st_size > 100_000
    subprocess.run(["oci-image-tool", "validate", "--type", "image", str(store)], check=True, capture_output=True)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_save_docker_load_docker_run(pybuild, busybox_rootfs, docker, tmp_path, compression):
    archive = tmp_path / "busybox.tar"
    pybuild("import", "--compression", compression, str(busybox_rootfs), "pybuild-test/saved:1")
    pybuild("save", "-o", str(archive), "pybuild-test/saved:1")
    subprocess.run([docker, "load", "-i", str(archive)], check=True, capture_output=True)
    try:
        out = subprocess.run([docker, "run", "--rm", "--network", "none", "pybuild-test/saved:1", "echo", "ok"],
                             capture_output=True, text=True, check=True)
        assert out.stdout == "ok\n"
    finally:
        subprocess.run([docker, "rmi", "-f", "pybuild-test/saved:1"], capture_output=True)


def test_docker_save_pybuild_load_same_config_and_layers(pybuild, busybox_tar, docker, tmp_path):
    subprocess.run([docker, "import", str(busybox_tar), "pybuild-test/base:1"], check=True, capture_output=True)
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM pybuild-test/base:1\nENV GREETING=hello PATH=/bin\nRUN echo data > /data && mkdir -p /srv/x\n"
        "WORKDIR /srv\nLABEL a=b\nEXPOSE 8080/tcp\nUSER 1000:1000\nCMD [\"sh\", \"-c\", \"echo $GREETING\"]\n")
    try:
        subprocess.run([docker, "build", "-q", "-t", "pybuild-test/built:1", str(context)], check=True,
                       capture_output=True, env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin"})
        archive = tmp_path / "built.tar"
        subprocess.run([docker, "save", "-o", str(archive), "pybuild-test/built:1"], check=True)
        expected = json.loads(subprocess.run([docker, "image", "inspect", "pybuild-test/built:1"], check=True,
                                             capture_output=True).stdout)[0]
    finally:
        subprocess.run([docker, "rmi", "-f", "pybuild-test/built:1", "pybuild-test/base:1"], capture_output=True)
    assert "Loaded image: pybuild-test/built:1" in pybuild("load", "-i", str(archive)).stdout.decode()
    got = json.loads(pybuild("inspect", "pybuild-test/built:1").stdout)[0]
    assert got["Id"] == expected["Id"]
    assert got["Config"] == expected["Config"]
    assert got["RootFS"]["Layers"] == expected["RootFS"]["Layers"]
    assert pybuild("fsck").returncode == 0


def test_oci_archive_from_skopeo_loads(pybuild, busybox_image, tmp_path):
    oci_dir = tmp_path / "from-skopeo.tar"
    subprocess.run(["skopeo", "copy", f"oci:{pybuild.root / 'store'}:busybox:latest",
                    f"oci-archive:{oci_dir}:docker.io/library/copied:2"], check=True, capture_output=True)
    pybuild("rmi", busybox_image)
    pybuild("prune")
    out = pybuild("load", "-i", str(oci_dir)).stdout.decode()
    assert "copied:2" in out
    pybuild("save", "--format", "oci", "-o", str(tmp_path / "again.tar"), "copied:2")
    subprocess.run(["skopeo", "inspect", f"oci-archive:{tmp_path / 'again.tar'}:copied:2"], check=True, capture_output=True)


def _spawn(root, *args):
    return subprocess.Popen([PYBUILD, *args], env={"PYBUILD_ROOT": str(root), "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_eight_concurrent_processes_then_fsck_clean(pybuild, busybox_rootfs, busybox_tar, busybox_image):
    procs = []
    for n in range(8):
        if n % 3 == 0:
            procs.append(_spawn(pybuild.root, "import", str(busybox_tar), f"conc:{n}"))
        elif n % 3 == 1:
            procs.append(_spawn(pybuild.root, "tag", busybox_image, f"conc:{n}"))
        else:
            procs.append(_spawn(pybuild.root, "import", "--compression", "zstd", str(busybox_rootfs), f"conc:{n}"))
    for proc in procs:
        assert proc.wait(120) == 0, proc.stderr.read()
    rmis = [_spawn(pybuild.root, "rmi", f"conc:{n}") for n in range(0, 8, 2)]
    for proc in rmis:
        assert proc.wait(60) == 0, proc.stderr.read()
    rows = [json.loads(line) for line in pybuild("images", "--format", "json").stdout.decode().splitlines()]
    assert {row["Tag"] for row in rows if row["Repository"] == "conc"} == {"1", "3", "5", "7"}
    assert "store clean" in pybuild("fsck").stdout.decode()


@pytest.mark.slow
def test_kill_9_during_import_leaves_store_clean(pybuild, tmp_path):
    """The kill lands mid-import, where the test decides: pybuild reads the tarball from a FIFO the
    test writes, one whole 4 MiB member and half of a second; once those writes return, pybuild has
    unpacked the first member into the store's temp space and waits for more bytes."""
    chunk = bytes(range(256)) * 4096  # 1 MiB
    members = [tarfile.TarInfo(name) for name in ("first", "second")]
    for member in members:
        member.size, member.mode = 4 * len(chunk), 0o644
    fifo = tmp_path / "rootfs.tar"
    os.mkfifo(fifo)
    proc = _spawn(pybuild.root, "import", str(fifo), "big:1")
    with open(fifo, "wb") as pipe:  # returns once pybuild has opened its end
        pipe.write(members[0].tobuf(tarfile.GNU_FORMAT) + chunk * 4)
        pipe.write(members[1].tobuf(tarfile.GNU_FORMAT) + chunk * 2)  # > the pipe's 64 KiB buffer
        partial = [path for path in (pybuild.root / "tmp").rglob("first") if path.stat().st_size == 4 * len(chunk)]
        assert partial, "pybuild had not unpacked the first member into $ROOT/tmp"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    assert pybuild("fsck").returncode == 0
    assert b"big" not in pybuild("images").stdout
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "first").write_bytes(chunk)
    pybuild("import", str(rootfs), "big:2")
    assert "store clean" in pybuild("fsck").stdout.decode()
