"""``pybuild build`` vs ``docker build`` (legacy builder) vs ``podman build``, same workloads, one run.

Usage: python bench/build.py [--reps N] [--only NAME,...] [--tools pybuild,docker,podman]
       [--debian-rootfs DIR] [--json FILE]

Workloads (each from an identical base imported into every tool):
  small       busybox: COPY a script, RUN, ENV, CMD
  multistage  two busybox stages built from one Dockerfile, COPY --from into a third
  run512      a RUN writing 512 MiB, then a RUN touching one file
  files20k    COPY of 20,000 small files
  debian      a debootstrap'd Debian base (--debian-rootfs), RUN with dpkg and useradd
Scenarios: cold (--no-cache, base present), cached (nothing changed), changed (one
source file edited).  Prints medians, ratios to docker, and pybuild's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from differential.harness import base_rootfs_tar  # noqa: E402

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
PODMAN_BUILD = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]

WORKLOADS = {
    "small": ("bench-busybox", {
        "Dockerfile": "FROM bench-busybox\nCOPY app.sh /usr/local/bin/app\nRUN chmod 755 /usr/local/bin/app\n"
                      "ENV MODE=bench\nCMD [\"app\"]\n",
        "app.sh": "#!/bin/sh\necho app\n"}),
    "multistage": ("bench-busybox", {
        "Dockerfile": "FROM bench-busybox AS a\nCOPY a.txt /a.txt\nRUN cat /a.txt > /out-a\n"
                      "FROM bench-busybox AS b\nRUN echo b > /out-b\n"
                      "FROM bench-busybox\nCOPY --from=a /out-a /\nCOPY --from=b /out-b /\nCMD [\"cat\", \"/out-a\"]\n",
        "a.txt": "a\n"}),
    "run512": ("bench-busybox", {
        "Dockerfile": "FROM bench-busybox\nRUN dd if=/dev/zero of=/big bs=1M count=512 2>/dev/null\n"
                      "COPY stamp /stamp\nRUN touch /small\n",
        "stamp": "1\n"}),
    "files20k": ("bench-busybox", {
        "Dockerfile": "FROM bench-busybox\nCOPY files /files\nCOPY stamp /stamp\n", "stamp": "1\n"}),
    "debian": ("bench-debian", {
        "Dockerfile": "FROM bench-debian\nRUN dpkg -l > /packages && useradd -m app\nCOPY stamp /stamp\n"
                      "USER app\nCMD [\"id\"]\n",
        "stamp": "1\n"}),
}


def _make_context(name: str, tool: str, files: dict[str, str], where: Path) -> Path:
    ctx = where / f"{name}-{tool}"
    ctx.mkdir()
    for rel, text in files.items():
        (ctx / rel).write_text(text)
    if name == "files20k":
        for i in range(20000):
            d = ctx / "files" / f"d{i // 500:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:05d}.txt").write_text(f"file {i}\n")
    return ctx


def _edit(ctx: Path) -> None:
    """The 'one changed source file' edit: the file the last COPY uses."""
    for name in ("stamp", "app.sh", "a.txt"):
        path = ctx / name
        if path.exists():
            path.write_text(path.read_text() + "#\n")
            return


class Tool:
    name = ""

    def build_cmd(self, ctx: Path, tag: str, no_cache: bool) -> list[str]:
        raise NotImplementedError

    def run(self, ctx: Path, tag: str, no_cache: bool) -> tuple[float, int]:
        """Seconds and peak RSS (KiB, of the client process tree)."""
        cmd = ["/usr/bin/time", "-f", "%M", *self.build_cmd(ctx, tag, no_cache)]
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, env=env)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name} build of {ctx.name} failed: {proc.stderr.decode()[-800:]}")
        rss = int(proc.stderr.decode().strip().splitlines()[-1])
        return elapsed, rss

    def cleanup(self, names: list[str]) -> None:
        """Remove what the run added to the tool's image store."""


class Pybuild(Tool):
    name = "pybuild"

    def __init__(self, root: Path):
        self.root = root

    def import_base(self, tar: Path, name: str) -> None:
        subprocess.run([PYBUILD, "--root", str(self.root), "import", str(tar), name], check=True, capture_output=True)

    def build_cmd(self, ctx, tag, no_cache):
        return [PYBUILD, "--root", str(self.root), "build", "-q", "-t", tag, *(["--no-cache"] if no_cache else []), str(ctx)]

    def last_layer_time(self, ctx: Path, tag: str) -> float | None:
        """Seconds the last step spent making its layer (from plain progress), after an edit."""
        _edit(ctx)
        cmd = [PYBUILD, "--root", str(self.root), "build", "--progress", "plain", "-t", tag, str(ctx)]
        err = subprocess.run(cmd, capture_output=True, check=True).stderr.decode()
        times = re.findall(r"\(layer ([0-9.]+)s\)", err)
        return float(times[-1]) if times else None


class Docker(Tool):
    name = "docker"

    def import_base(self, tar: Path, name: str) -> None:
        subprocess.run(["docker", "import", str(tar), name], check=True, capture_output=True)

    def build_cmd(self, ctx, tag, no_cache):
        return ["docker", "build", "-q", "-t", tag, *(["--no-cache"] if no_cache else []), str(ctx)]

    def cleanup(self, names):
        subprocess.run(["docker", "rmi", "-f", *names], capture_output=True)


class Podman(Tool):
    name = "podman"

    def import_base(self, tar: Path, name: str) -> None:
        subprocess.run([*PODMAN, "import", str(tar), name], check=True, capture_output=True)

    def build_cmd(self, ctx, tag, no_cache):
        return [*PODMAN, "build", "-q", *PODMAN_BUILD, "-t", tag, *(["--no-cache"] if no_cache else []), str(ctx)]

    def cleanup(self, names):
        subprocess.run([*PODMAN, "rmi", "-f", *names], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--tools", default="pybuild,docker,podman")
    ap.add_argument("--debian-rootfs", default=None, help="a debootstrap'd rootfs dir (debian workload)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        return _bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(args, work: Path) -> int:
    names = [n for n in args.only.split(",") if n]
    if "debian" in names and not args.debian_rootfs:
        names.remove("debian")
    tools: list[Tool] = []
    for t in args.tools.split(","):
        tools.append(Pybuild(work / "root") if t == "pybuild" else Docker() if t == "docker" else Podman())
    busybox = work / "busybox.tar"
    base_rootfs_tar(busybox)
    bases = {"bench-busybox": busybox}
    if "debian" in names:
        debian = work / "debian.tar"
        subprocess.run(["tar", "-C", args.debian_rootfs, "-cf", str(debian), "."], check=True)
        bases["bench-debian"] = debian
    for tool in tools:
        for name, tar in bases.items():
            tool.import_base(tar, name)
    results: dict = {}
    for name in names:
        base, files = WORKLOADS[name]
        heavy = name in ("run512", "files20k")
        reps = max(1, args.reps - 1) if heavy else args.reps
        for tool in tools:
            ctx = _make_context(name, tool.name, files, work)
            tag = f"benchout-{name}:latest"
            row: dict = {}
            cold = [tool.run(ctx, tag, no_cache=True) for _ in range(reps)]
            cached = [tool.run(ctx, tag, no_cache=False) for _ in range(reps)]
            changed = []
            for _ in range(reps):
                _edit(ctx)
                changed.append(tool.run(ctx, tag, no_cache=False))
            for label, runs in (("cold", cold), ("cached", cached), ("changed", changed)):
                row[label] = statistics.median(t for t, _ in runs)
                row[label + "_rss_kib"] = max(r for _, r in runs)
            if name == "run512" and isinstance(tool, Pybuild):
                row["touch_layer_s"] = tool.last_layer_time(ctx, tag)
            results.setdefault(name, {})[tool.name] = row
            extra = f"  touch-layer {row['touch_layer_s']:.3f}s" if row.get("touch_layer_s") is not None else ""
            print(f"{name:<11} {tool.name:<8} cold {row['cold']:7.2f}s  cached {row['cached']:7.3f}s  "
                  f"changed {row['changed']:7.2f}s  peak {row['cold_rss_kib'] // 1024} MiB{extra}", flush=True)
    for tool in tools:
        tool.cleanup([f"benchout-{n}:latest" for n in names] + list(bases))
    _report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def _report(results: dict) -> None:
    print("\n| workload | scenario | pybuild | docker | podman | pybuild/docker |")
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        for scenario in ("cold", "cached", "changed"):
            cells = [rows.get(t, {}).get(scenario) for t in ("pybuild", "docker", "podman")]
            ratio = f"{cells[0] / cells[1]:.2f}x" if cells[0] and cells[1] else "-"
            fmt = ["-" if c is None else f"{c:.3f} s" for c in cells]
            print(f"| {name} | {scenario} | {' | '.join(fmt)} | {ratio} |")


if __name__ == "__main__":
    sys.exit(main())
