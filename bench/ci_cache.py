"""The CI scenario: a cold runner with a warm registry cache, pybuild vs docker vs buildah.

Usage: python bench/ci_cache.py [--only small,multistage,runheavy] [--tools pybuild,docker,buildah]
       [--json FILE]

One docker-registry on 127.0.0.1 holds the base image.  For each workload and tool,
runner A (a fresh store) builds and exports its cache, then runner B (another fresh
store) builds the same context using that cache, as a new CI job would:

  pybuild  A: --cache-to type=registry,ref=R/W:cache,mode=max   B: --cache-from type=registry,ref=R/W:cache
  docker   A: build + push R/W:img                               B: pull R/W:img, build --cache-from R/W:img
           (the legacy builder's --cache-from reads local images only, so B pulls it first)
  buildah  A: bud --layers --cache-to R/W-cache                  B: bud --layers --cache-from R/W-cache

Reported: B's wall time (everything a job does: pulls included) and the bytes B fetched
from the registry (blob GETs in the registry's access log).  A is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from build import WORKLOADS, _make_context  # noqa: E402

from differential.harness import base_rootfs_tar  # noqa: E402
from registry_fixtures import start_registry  # noqa: E402

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
BUSY = "for i in $(seq 1 400000); do :; done"
RUNHEAVY = {  # CPU in RUN steps, a builder stage whose output is all the final image needs
    "Dockerfile": "FROM bench-busybox AS build\nCOPY src.txt /src.txt\n"
                  f"RUN {BUSY} && dd if=/dev/urandom of=/deps bs=1M count=16 2>/dev/null\n"
                  f"RUN {BUSY} && cat /src.txt > /artifact && md5sum /deps >> /artifact\n"
                  "FROM bench-busybox\nCOPY --from=build /artifact /artifact\n"
                  f"RUN {BUSY} && cp /artifact /checked\nCMD [\"cat\", \"/artifact\"]\n",
    "src.txt": "source\n"}


def _add_nonce(tar_path: Path) -> None:
    import io  # noqa: PLC0415
    import secrets  # noqa: PLC0415
    import tarfile  # noqa: PLC0415

    data = secrets.token_hex(16).encode() + b"\n"
    with tarfile.open(tar_path, "a") as tar:
        info = tarfile.TarInfo("etc/bench-nonce")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def blob_bytes(log: Path, since: int) -> int:
    total = 0
    for line in log.read_text(errors="replace").splitlines()[since:]:
        m = re.search(r'"GET /v2/\S+/blobs/sha256:[0-9a-f]{64} HTTP/[\d.]+" (200|206) (\d+)', line)
        if m:
            total += int(m.group(2))
    return total


def lines(log: Path) -> int:
    return len(log.read_text(errors="replace").splitlines())


def sh(*cmd: str, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "0", **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed: {proc.stderr.decode()[-800:]}")
    return proc.stdout.decode(errors="replace")


def _plain(reg: str) -> dict:
    return {"PYBUILD_INSECURE_REGISTRIES": reg}


def run_b(cmds: list[list[str]], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    out = "".join(sh(*cmd, env=env) for cmd in cmds)
    return time.perf_counter() - start, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="small,multistage,runheavy")
    ap.add_argument("--tools", default="pybuild,docker,buildah")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ci-"))
    registry = start_registry(work / "registry", "plain")
    try:
        return _bench(args, work, registry.host, registry.log_path)
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


def _bench(args, work: Path, reg: str, log: Path) -> int:
    base = f"{reg}/bench/busybox:1"
    tar = work / "busybox.tar"
    base_rootfs_tar(tar)
    _add_nonce(tar)  # a base layer no tool has yet (docker shares layers across all its images)
    seed = work / "seed"
    sh(PYBUILD, "--root", str(seed), "import", str(tar), base)
    sh(PYBUILD, "--root", str(seed), "push", "--insecure", base, env=_plain(reg))
    workloads = {**{k: v[1] for k, v in WORKLOADS.items()}, "runheavy": RUNHEAVY}
    results: dict = {}
    for name in [n for n in args.only.split(",") if n]:
        files = {k: v.replace("bench-busybox", base) for k, v in workloads[name].items()}
        for tool in args.tools.split(","):
            ctx = _make_context(name, tool, files, work)
            env = _plain(reg)
            if tool == "pybuild":
                cache = f"{reg}/bench/{name}:pycache"
                sh(PYBUILD, "--root", str(work / f"A-{name}"), "build", "-q", "--insecure",
                   "--cache-to", f"type=registry,ref={cache},mode=max", str(ctx), env=env)
                b_cmds = [[PYBUILD, "--root", str(work / f"B-{name}"), "build", "-q", "--insecure",
                           "--cache-from", f"type=registry,ref={cache}", str(ctx)]]
                cleanup: list[list[str]] = []
            elif tool == "docker":
                img = f"{reg}/bench/{name}:docker"
                out = subprocess.run(["docker", "build", "-t", img, str(ctx)], capture_output=True, text=True,
                                     env={**os.environ, "DOCKER_BUILDKIT": "0"}, check=True).stdout
                sh("docker", "push", img)
                # runner B starts empty: drop the image, its base and every intermediate image A's build
                # left (they hold the layers), found in A's own output; never a global prune
                made = re.findall(r"---> ([0-9a-f]{12})\b", out)
                subprocess.run(["docker", "rmi", "-f", img, base, *made], capture_output=True)
                b_cmds = [["docker", "pull", "-q", img], ["docker", "build", "--cache-from", img, str(ctx)]]
                cleanup = [["docker", "rmi", "-f", img, base]]  # + what B's build made, below
            else:
                cache = f"{reg}/bench/{name}-buildah-cache"
                store_a = ["--root", str(work / f"bhA-{name}"), "--runroot", str(work / f"bhA-run-{name}")]
                store_b = ["--root", str(work / f"bhB-{name}"), "--runroot", str(work / f"bhB-run-{name}")]
                flags = ["--layers", "--tls-verify=false", "-q", "--isolation", "chroot"]
                sh("buildah", *store_a, "bud", *flags, "--cache-to", cache, "-t", f"bench-{name}", str(ctx))
                b_cmds = [["buildah", *store_b, "bud", *flags, "--cache-from", cache, "-t", f"bench-{name}", str(ctx)]]
                cleanup = [["buildah", *store_a, "rmi", "-a", "-f"], ["buildah", *store_b, "rmi", "-a", "-f"]]
            mark = lines(log)
            seconds, out = run_b(b_cmds, env)
            fetched = blob_bytes(log, mark)
            if tool == "docker":
                cleanup[0] += re.findall(r"---> ([0-9a-f]{12})\b", out)
            for cmd in cleanup:
                subprocess.run(cmd, capture_output=True)
            results.setdefault(name, {})[tool] = {"seconds": seconds, "bytes": fetched}
            print(f"{name:<10} {tool:<8} runner B {seconds:7.2f}s  fetched {fetched / 1e6:8.2f} MB", flush=True)
    print("\n| workload | pybuild | docker | buildah | pybuild/docker time | pybuild bytes / min(peers) |")
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        cells = [rows.get(t) for t in ("pybuild", "docker", "buildah")]
        fmt = ["-" if c is None else f"{c['seconds']:.2f} s, {c['bytes'] / 1e6:.2f} MB" for c in cells]
        ratio = f"{cells[0]['seconds'] / cells[1]['seconds']:.2f}x" if cells[0] and cells[1] else "-"
        peers = [c["bytes"] for c in cells[1:] if c]
        share = f"{cells[0]['bytes'] / min(peers):.2f}" if cells[0] and peers and min(peers) else "-"
        print(f"| {name} | {' | '.join(fmt)} | {ratio} | {share} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
