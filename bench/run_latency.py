"""``pybuild run --rm IMAGE true`` latency vs docker, podman and runc, same image, one run.

Usage: python bench/run_latency.py [--reps N] [--tools pybuild,pybuild-nosite,docker,podman,runc,unshare] [--json FILE]

One busybox rootfs is imported into every tool (pybuild import, docker import,
podman import, a runc bundle from ``runc spec``).  Rounds are interleaved (each
round runs every tool once, in turn) so that background load hits all alike.
Prints median and quartiles per tool and pybuild's ratios to docker and runc.

``pybuild-nosite`` is the same command started as ``python -S`` with the repo on
``sys.path``: the cost of the venv's setuptools editable-install finder (imported
by site for every Python start) shows as the difference.
Byte-code is compiled first: this environment sets PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PYBUILD = str(Path(PYTHON).with_name("pybuild"))
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
PODMAN_RUN = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
IMAGE = "pybuild-bench-run"


def make_rootfs(target: Path) -> Path:
    """A static busybox with its applet links and a passwd/group."""
    for sub in ("bin", "etc", "tmp", "root", "proc", "dev", "sys"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", target / "bin" / "busybox")
    for applet in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split():
        if applet != "busybox":
            (target / "bin" / applet).symlink_to("busybox")
    (target / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (target / "etc" / "group").write_text("root:x:0:\n")
    return target


def prepare(work: Path, tools: list[str]) -> dict[str, list[str]]:
    """Import the rootfs everywhere; return each tool's command line."""
    rootfs = make_rootfs(work / "rootfs")
    tar = work / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    root = work / "pybuild-root"
    os.environ.setdefault("PYBUILD_NETWORK", "host")  # this bench is the host-network one; see run_latency_bridge.py
    env_root = {**os.environ, "PYBUILD_ROOT": str(root)}
    subprocess.run([PYTHON, "-m", "compileall", "-q", "builder", "registry", "runner"], cwd=REPO,
                   check=True, stdout=subprocess.DEVNULL)
    commands: dict[str, list[str]] = {}
    if any(t.startswith("pybuild") for t in tools):
        subprocess.run([PYBUILD, "import", str(rootfs), IMAGE], env=env_root, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([PYBUILD, "run", "--rm", IMAGE, "true"], env=env_root, check=True)  # unpack, warm caches
        os.environ["PYBUILD_ROOT"] = str(root)
        commands["pybuild"] = [PYBUILD, "run", "--rm", IMAGE, "true"]
        launcher = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from builder.cli import main; "
                    "sys.exit(main(sys.argv[1:]))")
        commands["pybuild-nosite"] = [PYTHON, "-S", "-c", launcher, str(REPO), "run", "--rm", IMAGE, "true"]
    if "docker" in tools:
        subprocess.run(["docker", "import", str(tar), IMAGE], check=True, stdout=subprocess.DEVNULL)
        commands["docker"] = ["docker", "run", "--rm", IMAGE, "true"]
    if "podman" in tools:
        subprocess.run([*PODMAN, "import", str(tar), IMAGE], check=True, stdout=subprocess.DEVNULL)
        commands["podman"] = [*PODMAN, "run", "--rm", *PODMAN_RUN, IMAGE, "true"]
    if "runc" in tools:
        bundle = work / "bundle"
        bundle.mkdir()
        shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)
        subprocess.run(["runc", "spec"], cwd=bundle, check=True)
        spec = json.loads((bundle / "config.json").read_text())
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["true"]
        (bundle / "config.json").write_text(json.dumps(spec))
        commands["runc"] = ["runc", "run", "-b", str(bundle)]  # + a fresh id per run
    if "unshare" in tools:
        commands["unshare"] = ["unshare", "-m", "-u", "-i", "-p", "-f", "chroot", str(rootfs), "/bin/true"]
    return {t: commands[t] for t in tools if t in commands}


def time_once(name: str, cmd: list[str], n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children)."""
    if name == "runc":
        cmd = [*cmd, f"bench-{os.getpid()}-{n}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}): {proc.stderr.decode()[-400:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(commands: dict[str, list[str]], reps: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """One warm-up run each, then ``reps`` interleaved rounds: (wall, CPU) seconds per tool."""
    for name, cmd in commands.items():
        time_once(name, cmd, -1)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for n in range(reps):
        for name, cmd in commands.items():
            wall, used = time_once(name, cmd, n)
            samples[name].append(wall)
            cpu[name].append(used)
    return samples, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--tools", default="pybuild,pybuild-nosite,docker,podman,runc,unshare")
    parser.add_argument("--json", help="write the raw timings here")
    args = parser.parse_args()
    tools = args.tools.split(",")
    with tempfile.TemporaryDirectory(prefix="run-latency-") as tmp:
        commands = prepare(Path(tmp), tools)
        samples, cpu = measure(commands, args.reps)
    print(f"{'tool':<16}{'median ms':>10}{'p25':>8}{'p75':>8}{'CPU ms':>8}   "
          f"(n={args.reps}, interleaved; load avg {os.getloadavg()[0]:.2f}; CPU: the command and its children, "
          "not the docker/podman daemons)")
    medians = {}
    for name, values in samples.items():
        q = statistics.quantiles(values, n=4)
        medians[name] = statistics.median(values)
        print(f"{name:<16}{medians[name] * 1000:>10.1f}{q[0] * 1000:>8.1f}{q[2] * 1000:>8.1f}"
              f"{statistics.median(cpu[name]) * 1000:>8.1f}")
    for ours in ("pybuild", "pybuild-nosite"):
        for other in ("docker", "podman", "runc"):
            if ours in medians and other in medians:
                print(f"{ours} / {other}: {medians[ours] / medians[other]:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"wall": samples, "cpu": cpu}, indent=1))
    if IMAGE and "docker" in commands:
        subprocess.run(["docker", "rmi", IMAGE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if "podman" in commands:
        subprocess.run([*PODMAN, "rmi", IMAGE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
