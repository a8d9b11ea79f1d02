"""Rootless vs root: ``build --no-cache`` of a one-RUN project and ``run --rm IMAGE true``,
pybuild as root, pybuild rootless and podman rootless (the same throwaway user), one run.

Usage (as root): python bench/rootless.py [--reps N] [--json FILE]

A user with a subordinate id range is created for the run and removed afterwards.
Both rootless tools use overlayfs inside the user namespace, cgroupfs/no cgroups and
``--network none``, so the rows compare the sandbox and storage work, not networking.
Rounds are interleaved (each round runs every tool once) so background load hits all
alike; each cell is the median with min-max of wall time, and the CPU time of the
child processes beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_latency import make_rootfs  # noqa: E402

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
DOCKERFILE = "FROM bench\nRUN echo built > /built && mkdir /data && chown 1000:1000 /data\n"


def make_user() -> tuple[str, int]:
    name = f"pbbench{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "-m", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name], check=True)
    highest = 100000
    for path in ("/etc/subuid", "/etc/subgid"):
        for line in Path(path).read_text().splitlines():
            parts = line.split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                highest = max(highest, int(parts[1]) + int(parts[2]))
    start = highest + 65536
    subprocess.run(["usermod", "--add-subuids", f"{start}-{start + 65535}", "--add-subgids",
                    f"{start}-{start + 65535}", name], check=True)
    return name, pwd.getpwnam(name).pw_uid


def commands(work: Path, user: str) -> dict[str, dict[str, list[str]]]:
    """Each tool's import, build and run command lines."""
    home = pwd.getpwnam(user).pw_dir
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = sysconfig.get_paths()["purelib"]
    as_user = ["runuser", "-u", user, "--", "env", "-i", f"HOME={home}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
               f"XDG_RUNTIME_DIR={work / 'xdg'}"]
    rootless = [*as_user, f"PYBUILD_ROOT={work / 'rootless-root'}", f"PYTHONPATH={REPO}:{site}",
                f"/usr/bin/python{version}", "-m", "builder.cli"]
    root = ["env", f"PYBUILD_ROOT={work / 'root-root'}", PYBUILD]
    podman = [*as_user, "podman", "--root", str(work / "podman"), "--runroot", str(work / "xdg" / "run"),
              "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    tar, ctx = str(work / "rootfs.tar"), str(work / "ctx")
    out = {}
    for name, base in (("pybuild root", root), ("pybuild rootless", rootless)):
        out[name] = {"import": [*base, "import", tar, "bench"],
                     "build": [*base, "build", "-q", "--no-cache", "-t", "built", ctx],
                     "run": [*base, "run", "--rm", "--network", "none", "bench", "true"]}
    out["podman rootless"] = {"import": [*podman, "import", tar, "bench"],
                              "build": [*podman, "build", "-q", "--no-cache", "--pull=never", "--network", "none",
                                        "-t", "built", ctx],
                              "run": [*podman, "run", "--rm", "--network", "none", "bench", "true"]}
    return out


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and child CPU seconds of one command (which must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd="/", capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode(errors='replace')[-800:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f} ms ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--json", help="write the raw numbers here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench creates (and removes) a user with subordinate ids")
    user, uid = make_user()
    work = Path(tempfile.mkdtemp(prefix="pybuild-bench-rootless-"))
    try:
        os.chown(work, uid, -1)
        make_rootfs(work / "rootfs")
        subprocess.run(["tar", "--owner=0", "--group=0", "-C", str(work / "rootfs"), "-cf", str(work / "rootfs.tar"), "."],
                       check=True)
        (work / "ctx").mkdir()
        (work / "ctx" / "Dockerfile").write_text(DOCKERFILE)
        (work / "xdg").mkdir(mode=0o700)
        subprocess.run(["chown", "-R", f"{user}:", str(work)], check=True)
        tools = commands(work, user)
        for cmds in tools.values():
            timed(cmds["import"])
            timed(cmds["build"])  # warm: byte-code, page cache
        results: dict[str, dict[str, dict[str, list[float]]]] = {
            t: {w: {"wall": [], "cpu": []} for w in ("build", "run")} for t in tools}
        for _ in range(args.reps):
            for work_name in ("build", "run"):
                for tool, cmds in tools.items():
                    wall, cpu = timed(cmds[work_name])
                    results[tool][work_name]["wall"].append(wall)
                    results[tool][work_name]["cpu"].append(cpu)
        load = os.getloadavg()
        print(f"{args.reps} rounds, load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'tool':<18} {'work':<6} {'wall median (min-max)':<28} cpu median")
        for tool, by_work in results.items():
            for work_name, numbers in by_work.items():
                print(f"{tool:<18} {work_name:<6} {summary(numbers['wall']):<28} "
                      f"{statistics.median(numbers['cpu']) * 1000:.0f} ms")
        if args.json:
            Path(args.json).write_text(json.dumps({"reps": args.reps, "load": load, "results": results}, indent=2))
    finally:
        subprocess.run(["rm", "-rf", str(work)])
        subprocess.run(["userdel", "-r", "-f", user], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
