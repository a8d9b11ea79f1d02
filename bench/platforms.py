"""Multi-platform builds: emulated vs native RUN steps, and one two-platform build vs two builds.

Usage: python bench/platforms.py [--reps N] [--spawns N] [--mib N] [--json FILE]

Bases: the host's busybox (linux/amd64) and Debian's busybox-static:arm64 (linux/arm64,
downloaded with ``apt-get download`` into a cache dir), combined into one index.  Two
RUN-heavy workloads, each built with ``--no-cache``:

  spawn   a RUN starting ``--spawns`` short processes (qemu's start-up cost per exec)
  cpu     a RUN hashing ``--mib`` MiB in one process (qemu's translated-code speed)

Scenarios per workload: ``native`` (--platform linux/amd64), ``emulated`` (linux/arm64),
``both`` (--platform linux/amd64,linux/arm64: one build, an index) and ``sequential``
(the two single-platform builds one after the other).  Prints medians of wall time.
Needs root, qemu-user-static registered with binfmt_misc (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import make_busybox_rootfs  # noqa: E402
from platform_helpers import download_busybox_deb, emulation_ready, make_foreign_busybox_rootfs  # noqa: E402

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pybuild-bench"


def workloads(spawns: int, mib: int) -> dict[str, str]:
    return {
        "spawn": f"FROM bench-multi\nRUN i=0; while [ $i -lt {spawns} ]; do echo $i | md5sum > /dev/null; "
                 f"i=$((i+1)); done\n",
        "cpu": f"FROM bench-multi\nRUN dd if=/dev/zero bs=1M count={mib} 2>/dev/null | sha256sum > /sum\n",
    }


SCENARIOS = {
    "native": [["linux/amd64"]],
    "emulated": [["linux/arm64"]],
    "both": [["linux/amd64", "linux/arm64"]],
    "sequential": [["linux/amd64"], ["linux/arm64"]],
}


def pybuild(root: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run([PYBUILD, *args], check=True, capture_output=True, text=True, input=stdin,
                   env={**os.environ, "PYBUILD_ROOT": str(root)})


def make_bases(root: Path, work: Path) -> None:
    amd64 = make_busybox_rootfs(work / "amd64")
    arm64 = make_foreign_busybox_rootfs(download_busybox_deb(CACHE), work / "arm64")
    pybuild(root, "import", "--platform", "linux/amd64", str(amd64), "bench-base:amd64")
    pybuild(root, "import", "--platform", "linux/arm64", str(arm64), "bench-base:arm64")
    pybuild(root, "build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", "bench-multi", "-",
            stdin="ARG TARGETARCH\nFROM bench-base:$TARGETARCH\n")


def timed(root: Path, ctx: Path, builds: list[list[str]]) -> float:
    started = time.perf_counter()
    for platforms in builds:
        pybuild(root, "build", "-q", "--no-cache", "--platform", ",".join(platforms), str(ctx))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--spawns", type=int, default=200)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    if not emulation_ready("aarch64"):
        print("qemu-aarch64 is not registered with binfmt_misc (F flag); run scripts/setup.sh", file=sys.stderr)
        return 1
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-platforms-") as tmp:
        work = Path(tmp)
        root = work / "root"
        make_bases(root, work)
        for name, dockerfile in workloads(args.spawns, args.mib).items():
            ctx = work / f"ctx-{name}"
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(dockerfile)
            results[name] = {}
            for scenario, builds in SCENARIOS.items():
                times = [timed(root, ctx, builds) for _ in range(args.reps)]
                results[name][scenario] = statistics.median(times)
    print(f"{'workload':10} {'native':>9} {'emulated':>9} {'ratio':>7} {'both':>9} {'sequential':>11} {'saved':>7}")
    for name, row in results.items():
        print(f"{name:10} {row['native']:8.2f}s {row['emulated']:8.2f}s {row['emulated'] / row['native']:6.1f}x "
              f"{row['both']:8.2f}s {row['sequential']:10.2f}s {1 - row['both'] / row['sequential']:6.0%}")
    print(f"(medians of {args.reps}; {os.cpu_count()} cores; spawn={args.spawns} processes, cpu={args.mib} MiB)")
    if args.json:
        Path(args.json).write_text(json.dumps({"reps": args.reps, "cores": os.cpu_count(), "results": results},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
