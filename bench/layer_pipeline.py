"""Layer pipeline benchmark: tar + diff_id + compress + digest of a 512 MiB rootfs.

Runs, in the same session and interleaved round by round (medians of ``--rounds``):
our pipeline in-process and through ``pybuild import DIR``; ``tar | sha256sum``;
``tar | gzip -1`` and ``tar | pigz -p 2 -1`` with both digests (``tee >(sha256sum)``);
``docker import`` and ``podman import`` of the same tar stream.  Peak RSS comes from
``/usr/bin/time`` (largest process of the command).  Also measures the gzip
implementations on PyPI (bench/gzip_impls.py) on the same data.

Usage:  python bench/layer_pipeline.py [--rounds 3] [--dir /var/tmp/pybuild-bench] [--write-docs docs/performance.md]
        python bench/layer_pipeline.py --once ROOTFS ROOT COMPRESSION   (one in-process run, JSON out)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from gzip_impls import IMPLS, measure  # noqa: E402
from rootfs import build_rootfs  # noqa: E402

PYTHON = sys.executable
PYBUILD = str(Path(PYTHON).parent / "pybuild")
PODMAN = "podman --runtime runc --cgroup-manager cgroupfs"
BEGIN, END = "<!-- layer-pipeline:begin -->", "<!-- layer-pipeline:end -->"


def once(rootfs: str, root: str, compression: str) -> None:
    """One in-process write_layer into a fresh store; prints JSON."""
    from registry.layer import write_layer
    from registry.store import Store

    store = Store(root)
    start = time.perf_counter()
    layer = write_layer(store, rootfs, compression=compression, source_date_epoch=0)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "bytes": layer.uncompressed_size, "size": layer.descriptor.size}))


def cases(rootfs: Path) -> dict[str, str]:
    tar = f"tar -C {rootfs} -cf - ."
    both = "tee >(sha256sum >/dev/null)"
    return {
        "pybuild pipeline, gzip (in-process)": f"{PYTHON} {__file__} --once {rootfs} $WORK gzip",
        "pybuild pipeline, zstd (in-process)": f"{PYTHON} {__file__} --once {rootfs} $WORK zstd",
        "pybuild import DIR (gzip)": f"SOURCE_DATE_EPOCH=0 PYBUILD_ROOT=$WORK {PYBUILD} import -q {rootfs} bench:1",
        "tar | sha256sum (no compression)": f"{tar} | sha256sum",
        "tar | gzip -1 | sha256sum (+ diff_id)": f"{tar} | {both} | gzip -1 | sha256sum",
        "tar | pigz -p 2 -1 | sha256sum (+ diff_id)": f"{tar} | {both} | pigz -p 2 -1 | sha256sum",
        "tar | docker import -": f"{tar} | docker import - pybuild-bench:1 >/dev/null",
        "tar | podman import -": f"{tar} | {PODMAN} import - pybuild-bench:1 >/dev/null",
    }


CLEANUP = {
    "tar | docker import -": "docker rmi -f pybuild-bench:1 >/dev/null 2>&1",
    "tar | podman import -": f"{PODMAN} rmi -f pybuild-bench:1 >/dev/null 2>&1",
}


def daemon_cpu() -> float:
    """CPU seconds used so far by dockerd and containerd (docker import works there, not in the client)."""
    pids = subprocess.run(["pidof", "dockerd", "containerd"], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def run_case(command: str, work: Path) -> tuple[float, int, dict | None, float]:
    """(wall s, peak RSS KiB, the in-process report if the command prints one, CPU s incl. dockerd)."""
    usage = work / "usage"
    shutil.rmtree(work / "root", ignore_errors=True)
    env = {**os.environ, "WORK": str(work / "root")}
    daemon = daemon_cpu()
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-o", str(usage), "-f", "%M %U %S", "bash", "-o", "pipefail", "-c", command],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {command}\n{proc.stderr}")
    inner = json.loads(proc.stdout) if proc.stdout.startswith("{") else None
    rss, user, system = usage.read_text().split()[-3:]
    cpu = float(user) + float(system) + (daemon_cpu() - daemon if "docker" in command else 0.0)
    return wall, int(rss), inner, cpu


def sha256_speed(data: bytes) -> float:
    """MB/s of hashlib's sha256 on one core (median of 3), in 1 MiB updates."""
    view = memoryview(data)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        digest = hashlib.sha256()
        for i in range(0, len(view), 1 << 20):
            digest.update(view[i:i + (1 << 20)])
        times.append(time.perf_counter() - start)
    return len(view) / statistics.median(times) / 1e6


def tar_size(rootfs: Path) -> int:
    out = subprocess.run(f"tar -C {rootfs} -cf - . | wc -c", shell=True, capture_output=True, text=True, check=True)
    return int(out.stdout)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import isal
    import zlib_ng
    import zstandard

    return (f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}, "
            f"isal {isal.__version__}, zlib-ng {getattr(zlib_ng, '__version__', '?')}, zstandard {zstandard.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/pybuild-bench"))
    parser.add_argument("--skip", action="append", default=[], help="skip cases whose name contains this")
    parser.add_argument("--no-gzip-table", action="store_true", help="skip the gzip implementations table")
    parser.add_argument("--write-docs", type=Path, help="replace the Layer pipeline section of this file")
    parser.add_argument("--once", nargs=3, metavar=("ROOTFS", "ROOT", "COMPRESSION"))
    args = parser.parse_args()
    if args.once:
        once(*args.once)
        return

    rootfs = args.dir / "rootfs-512m"
    if not (rootfs / ".complete").exists():
        shutil.rmtree(rootfs, ignore_errors=True)
        build_rootfs(rootfs)
        (rootfs / ".complete").touch()
    total = tar_size(rootfs)
    selected = {k: v for k, v in cases(rootfs).items() if not any(s in k for s in args.skip)}
    results: dict[str, list[tuple[float, int, dict | None, float]]] = {name: [] for name in selected}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        for rnd in range(args.rounds):
            for name, command in selected.items():
                results[name].append(run_case(command, work))
                if name in CLEANUP:
                    subprocess.run(CLEANUP[name], shell=True)
                print(f"round {rnd + 1} {name}: {results[name][-1][0]:.2f}s", file=sys.stderr, flush=True)
        sample = work / "sample.tar"
        subprocess.run(f"tar -C {rootfs} -cf - . | head -c {256 << 20} > {sample}", shell=True, check=True)
        data = sample.read_bytes()
        gzip_rows = [] if args.no_gzip_table else measure(data, IMPLS)
        sha_mbps = sha256_speed(data)
    load_after = os.getloadavg()[0]
    report = render(results, total, gzip_rows, sha_mbps, args.rounds, (load_before, load_after))
    print(report)
    if args.write_docs:
        write_docs(args.write_docs, report)


def render(results, total: int, gzip_rows: list[str], sha_mbps: float, rounds: int,
           loads: tuple[float, float]) -> str:
    ours_runs = results.get("pybuild pipeline, gzip (in-process)", [(1.0, 0, None, 1.0)])
    ours = statistics.median(w for w, _, _, _ in ours_runs)
    lines = [
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; "
        f"load average {loads[0]:.1f} before, {loads[1]:.1f} after (the machine is shared: figures move with it).",
        "",
        f"Input: a {total / 2**20:.0f} MiB tar of a generated rootfs (`bench/rootfs.py`: ~14,000 files, "
        "log-normal small files, 16-200 KiB binaries, a few 8-48 MiB blobs; ~40% of files random, "
        "the rest cut from real system libraries and docs). Wall time of the whole command, "
        f"median of {rounds} interleaved rounds; peak RSS of the largest process (`/usr/bin/time`).",
        "",
        "CPU s: user + system of every process of the command, plus dockerd's and containerd's for "
        "docker import; it moves much less with the load than wall time does.",
        "",
        "| command | median s | MB/s | pybuild gzip is x faster | CPU s | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in results.items():
        wall = statistics.median(w for w, _, _, _ in runs)
        cpu = statistics.median(c for _, _, _, c in runs)
        rss = max(r for _, r, _, _ in runs) / 1024
        note = " (client)" if "docker" in name else ""
        inner = [i["seconds"] for _, _, i, _ in runs if i is not None]
        extra = f" (pipeline alone {total / statistics.median(inner) / 1e6:.0f} MB/s)" if inner else ""
        lines.append(f"| {name}{extra} | {wall:.2f} | {total / wall / 1e6:.0f} | {wall / ours:.2f} | {cpu:.1f} "
                     f"| {rss:.0f}{note} |")
    report = ours_runs[0][2]
    ratio = report["size"] / report["bytes"] if report else 0.6
    lines += ["", f"sha256 (hashlib/OpenSSL, one core, no SHA extensions on this CPU): {sha_mbps:.0f} MB/s. "
              f"Both digests hash {1 + ratio:.2f} bytes per tar byte (gzip ratio {ratio:.2f}), so with two cores "
              f"and everything else free the ceiling is {2 * sha_mbps / (1 + ratio):.0f} MB/s.",
              "", "gzip implementations on PyPI, on the first 256 MiB of the same tar (one thread unless noted; "
              "median of 3; checked with `gzip -t`):", "", *gzip_rows]
    return "\n".join(lines)


def write_docs(path: Path, report: str) -> None:
    text = path.read_text() if path.exists() else "# Performance\n"
    section = f"{BEGIN}\n{report}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Layer pipeline\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
