"""Multi-platform builds (issue 13): platform parsing, an arm64 base, RUN under qemu emulation, run --platform."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from platform_helpers import need_emulation
from registry import platform as platforms
from registry.errors import ImageNotFound, PybuildError


def _ctx(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (ctx / name).write_text(text)
    return ctx


def _config(pybuild, name: str, *extra: str) -> dict:
    return json.loads(pybuild("inspect", *extra, name).stdout)[0]


# ---- parsing and matching: containerd's normalisation ---------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("linux/amd64", "linux/amd64"), ("linux/x86_64", "linux/amd64"), ("linux/aarch64", "linux/arm64"),
    ("linux/arm64/v8", "linux/arm64"), ("linux/arm", "linux/arm/v7"), ("linux/armhf", "linux/arm/v7"),
    ("linux/arm/7", "linux/arm/v7"), ("linux/armel", "linux/arm/v6"), ("Linux/ARM64", "linux/arm64"),
    ("arm64", "linux/arm64"), ("linux/i386", "linux/386"), ("linux/s390x", "linux/s390x"),
])
def test_platform_normalisation(text, expected):
    assert str(platforms.parse(text)) == expected


@pytest.mark.parametrize("text", ["", "linux/", "/amd64", "linux/arm/v7/x", "linux"])
def test_bad_platform_is_one_clear_error(text):
    with pytest.raises(PybuildError, match="expected os/arch"):
        platforms.parse(text)


def test_select_matches_variants_as_containerd_does():
    index = {"manifests": [
        {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "sha256:" + "3" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "sha256:" + "4" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
    ]}
    assert platforms.select(index, "linux/arm64")["digest"].endswith("2" * 64)
    assert platforms.select(index, "linux/aarch64")["digest"].endswith("2" * 64)
    assert platforms.select(index, "linux/arm")["digest"].endswith("3" * 64)
    assert platforms.select(index, "linux/arm/v6")["digest"].endswith("4" * 64)
    with pytest.raises(ImageNotFound, match=r"no manifest for platform linux/s390x \(available: linux/amd64, "
                                            r"linux/arm64/v8, linux/arm/v7, linux/arm/v6\)"):
        platforms.select(index, "linux/s390x")


def test_parse_list_keeps_order_and_drops_duplicates():
    assert [str(p) for p in platforms.parse_list("linux/arm64,linux/amd64,linux/aarch64")] == [
        "linux/arm64", "linux/amd64"]
    with pytest.raises(PybuildError, match="empty entry"):
        platforms.parse_list("linux/amd64,")


# ---- import --platform ------------------------------------------------------------------------
def test_import_records_platform_and_variant(pybuild, busybox_rootfs):
    pybuild("import", "--platform", "linux/arm/v7", str(busybox_rootfs), "armv7:1")
    pybuild("import", "--platform", "linux/aarch64", str(busybox_rootfs), "arm64:1")
    armv7, arm64 = _config(pybuild, "armv7:1"), _config(pybuild, "arm64:1")
    assert (armv7["Os"], armv7["Architecture"], armv7["Variant"]) == ("linux", "arm", "v7")
    assert (arm64["Os"], arm64["Architecture"], arm64["Variant"]) == ("linux", "arm64", "")
    bad = pybuild("import", "--platform", "linux", str(busybox_rootfs), "x:1", check=False)
    assert bad.returncode != 0 and bad.stderr.decode().count("\n") == 1 and "expected os/arch" in bad.stderr.decode()


# ---- the arm64 base, RUN under emulation, run --platform --------------------------------------
def test_arm64_base_builds_and_runs_under_emulation(pybuild, arm64_busybox, tmp_path):
    need_emulation("aarch64")
    ctx = _ctx(tmp_path, f"FROM {arm64_busybox}\nRUN uname -m | tee /arch\nCMD [\"cat\", \"/arch\"]\n")
    proc = pybuild("build", "--progress", "plain", "--platform", "linux/arm64", "-t", "arch-out", str(ctx))
    log = proc.stderr.decode()
    assert "RUN uname -m | tee /arch" in log and " aarch64\n" in log, log
    config = _config(pybuild, "arch-out")
    assert (config["Os"], config["Architecture"], config["Variant"]) == ("linux", "arm64", "")
    assert pybuild("run", "--rm", "--platform", "linux/arm64", "arch-out").stdout == b"aarch64\n"
    # the binary really is an aarch64 ELF (machine 0xb7), run through binfmt_misc
    assert pybuild("run", "--rm", "--platform", "linux/arm64", "arch-out", "head", "-c", "20",
                   "/bin/busybox").stdout[18:20] == b"\xb7\x00"
    # without --platform: docker's warning, and it still runs
    plain = pybuild("run", "--rm", "arch-out")
    assert plain.stdout == b"aarch64\n"
    assert ("WARNING: The requested image's platform (linux/arm64) does not match the detected host platform "
            f"({platforms.host()}) and no specific platform was requested") in plain.stderr.decode()
    # a platform the single-platform image is not: docker's error, before anything runs
    other = pybuild("run", "--rm", "--platform", "linux/s390x", "arch-out", check=False)
    assert other.returncode == 125
    assert other.stderr.decode().strip() == ("pybuild: error: image with reference arch-out was found but does not match the "
                                             "specified platform: wanted linux/s390x, actual: linux/arm64")


def test_foreign_base_without_platform_builds_as_its_platform(pybuild, arm64_busybox, tmp_path):
    need_emulation("aarch64")
    ctx = _ctx(tmp_path, f"FROM {arm64_busybox}\nRUN uname -m > /arch\n")
    image = pybuild("build", "-q", "-t", "implicit", str(ctx)).stdout.decode().split()[-1]
    assert _config(pybuild, image)["Architecture"] == "arm64"
    assert pybuild("run", "--rm", "implicit", "cat", "/arch").stdout == b"aarch64\n"


def test_mismatched_single_platform_base_gets_buildkits_warning(pybuild, busybox_image, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nRUN true\n")
    proc = pybuild("build", "--progress", "plain", "--platform", "linux/386", "-t", "i386", str(ctx))
    assert (f'[Warning] InvalidBaseImagePlatform: Base image busybox was pulled with platform "{platforms.host()}", '
            'expected "linux/386" for current build (line 1)') in proc.stderr.decode()
    assert _config(pybuild, "i386")["Architecture"] == "386"


def test_scratch_stage_takes_the_target_platform(pybuild, tmp_path):
    ctx = _ctx(tmp_path, "FROM scratch\nCOPY a /a\n", {"a": "a\n"})
    pybuild("build", "-q", "--platform", "linux/arm/v7", "-t", "scratch-arm", str(ctx))
    config = _config(pybuild, "scratch-arm")
    assert (config["Architecture"], config["Variant"]) == ("arm", "v7")


def test_foreign_run_without_emulation_fails_with_one_line(pybuild, busybox_rootfs, tmp_path):
    """qemu-s390x disabled (no other test runs s390x): the first foreign RUN fails with what to install."""
    handler = Path("/proc/sys/fs/binfmt_misc/qemu-s390x")
    pybuild("import", "--platform", "linux/s390x", str(busybox_rootfs), "s390x-base")
    ctx = _ctx(tmp_path, "FROM s390x-base\nCOPY a /a\nRUN echo $((40+2))\n", {"a": "a\n"})
    was_enabled = handler.exists() and handler.read_text().startswith("enabled")
    if was_enabled:
        handler.write_text("0")
    try:
        proc = pybuild("build", "--progress", "plain", "--platform", "linux/s390x", str(ctx), check=False)
        run = pybuild("run", "--rm", "s390x-base", "true", check=False)
    finally:
        if was_enabled:
            handler.write_text("1")
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "COPY a /a\n" in err and not re.search(r"^#\d+ [\d.]+ 42$", err, re.M)
    last = err.strip().splitlines()[-1]
    assert last.startswith("pybuild: error: Dockerfile:3: cannot run linux/s390x binaries") and "install Debian's qemu-user-static" in last
    assert "Traceback" not in err and "exec format error" not in err.lower()
    # `run` of the foreign image says the same (after docker's platform warning)
    assert run.returncode == 125
    assert run.stderr.decode().strip().splitlines()[-1].startswith("pybuild: error: cannot run linux/s390x binaries")


# ---- BuildKit's automatic platform args --------------------------------------------------------
ARGS_PROBE = """\
FROM busybox
RUN echo "undeclared=[$TARGETPLATFORM][$BUILDARCH]" > /out
ARG TARGETPLATFORM
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
ARG BUILDPLATFORM
ARG BUILDOS
ARG BUILDARCH
ARG BUILDVARIANT
RUN echo "$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$BUILDVARIANT" >> /out
"""


@pytest.mark.parametrize("target,expected", [
    # BuildKit's documented values: TARGETPLATFORM is the normalised --platform, VARIANT empty when there is none
    ("linux/arm/v7", "linux/arm/v7|linux|arm|v7"),
    ("linux/arm64", "linux/arm64|linux|arm64|"),
    ("linux/aarch64/v8", "linux/arm64|linux|arm64|"),
    (None, "linux/amd64|linux|amd64|"),
])
def test_automatic_platform_args(pybuild, busybox_image, tmp_path, target, expected):
    if platforms.host() != platforms.parse("linux/amd64"):
        pytest.skip("the expected BUILD* values are those of an amd64 host")
    ctx = _ctx(tmp_path, ARGS_PROBE)
    extra = ("--platform", target) if target else ()
    pybuild("build", "-q", *extra, "-t", "probe", str(ctx))
    out = pybuild("run", "--rm", *extra, "probe", "cat", "/out", check=False)
    assert out.stdout.decode() == f"undeclared=[][]\n{expected}|linux/amd64|linux|amd64|\n", out.stderr


def test_automatic_args_in_global_scope_and_overridable(pybuild, busybox_rootfs, tmp_path):
    pybuild("import", "--platform", "linux/arm64", str(busybox_rootfs), "base-arm64")
    ctx = _ctx(tmp_path, "FROM base-$TARGETARCH\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n")
    image = pybuild("build", "-q", "--platform", "linux/arm64", str(ctx)).stdout.decode().split()[-1]
    assert _config(pybuild, image)["Architecture"] == "arm64"
    # a global ARG with a default wins over the automatic value: base-arm64 on a host build
    (tmp_path / "2").mkdir()
    ctx2 = _ctx(tmp_path / "2", "ARG TARGETARCH=arm64\nFROM base-$TARGETARCH\nENV A=1\n")
    image2 = pybuild("build", "-q", str(ctx2)).stdout.decode().split()[-1]
    assert _config(pybuild, image2)["Architecture"] == "arm64"


def test_cross_compile_stage_runs_natively(pybuild, busybox_rootfs, arm64_busybox, tmp_path):
    """``FROM --platform=$BUILDPLATFORM``: the build stage runs on the host, the target stage emulated."""
    need_emulation("aarch64")
    pybuild("import", str(busybox_rootfs), "host-busybox")
    ctx = _ctx(tmp_path, "FROM --platform=$BUILDPLATFORM host-busybox AS build\nARG TARGETARCH\n"
                         "RUN uname -m > /built-on && echo $TARGETARCH > /built-for && cat /built-on\n"
                         f"FROM {arm64_busybox}\nCOPY --from=build /built-on /built-for /\n")
    proc = pybuild("build", "--progress", "plain", "--platform", "linux/arm64", "-t", "cross", str(ctx))
    log = proc.stderr.decode()
    assert re.search(r"^#(\d+) \[linux/amd64->arm64 build 3/3\] RUN uname -m .*\n#\1 [\d.]+ x86_64$", log, re.M), log
    assert "[linux/arm64 stage-1 2/2] COPY --from=build" in log
    assert pybuild("run", "--rm", "cross", "cat", "/built-on", "/built-for").stdout == b"x86_64\narm64\n"
    assert pybuild("run", "--rm", "cross", "uname", "-m").stdout == b"aarch64\n"
    assert _config(pybuild, "cross")["Architecture"] == "arm64"


def test_container_cannot_open_the_hosts_qemu_for_writing(pybuild, arm64_busybox, tmp_path):
    """The CVE-2019-5736 pattern against the emulator: a native binary in a foreign container opens the
    host's qemu through /proc/PID/exe of an emulated process and reopens it for writing.  The F flag's
    registration keeps the interpreter write-denied (ETXTBSY); the attempt is non-destructive (append, no data)."""
    need_emulation("aarch64")
    interpreter = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text().split("interpreter ")[1].split()[0]
    host_binary = Path(interpreter).resolve()
    before = host_binary.read_bytes()
    ctx = _ctx(tmp_path, f"FROM {arm64_busybox}\nCOPY busybox /native/busybox\n")
    shutil.copy2("/bin/busybox", ctx / "busybox")
    pybuild("build", "-q", "-t", "attack", str(ctx))
    script = ("N=/native/busybox; $N mkfifo /tmp/ready; "
              "/bin/sh -c 'echo > /tmp/ready; exec /bin/sleep 1000' & P=$!; $N head -n1 /tmp/ready > /dev/null; "
              "exec 3< /proc/$P/exe; $N readlink /proc/self/fd/3; $N kill $P; wait $P; "
              "if (exec 4>> /proc/self/fd/3) 2>/dev/null; then echo OPENED-FOR-WRITE; else echo refused; fi")
    proc = pybuild("run", "--rm", "--platform", "linux/arm64", "--entrypoint", "/native/busybox", "attack",
                   "sh", "-c", script, check=False)
    lines = proc.stdout.decode().splitlines()
    assert lines == [str(host_binary), "refused"], proc.stderr.decode()
    assert host_binary.read_bytes() == before
