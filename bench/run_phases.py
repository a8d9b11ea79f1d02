"""Where ``pybuild run --rm IMAGE true`` spends its time, phase by phase (issue 14).

Each phase is measured as the difference between two commands run the same way
(fresh processes, byte-code compiled, interleaved round by round, medians of ``--reps``):

1. interpreter start-up: ``python -S -c pass``, then ``python -c pass`` (``site`` and the venv's ``.pth``);
2. importing ``builder.cli`` (argparse and what it pulls in);
3. importing the whole run path: every module a real ``run`` loads (from the
   ``PYBUILD_IMPORTS_OUT`` hook of builder/cli.py), in one ``import`` statement;
4. the command itself, in-process after those imports: the caller's own CPU
   (``RUSAGE_SELF``) and its waited-for children's (``RUSAGE_CHILDREN``: the shim and
   the container's processes);
5. the system calls of each process (``strace -f -c`` per process with ``-ff``), so the
   caller, the shim and the container's init are told apart.

Usage (root): .venv/bin/python bench/run_phases.py [--reps 15] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE)]

import run_latency  # noqa: E402

PY = sys.executable
PROBE = """
import resource, sys, time
c0, t0 = time.process_time(), time.perf_counter()
from builder.cli import main
c1 = time.process_time()
rc = main(sys.argv[1:])
s, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(c1 - c0, s.ru_utime + s.ru_stime - c1, ch.ru_utime + ch.ru_stime, time.perf_counter() - t0, rc)
"""


def cpu_wall(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def syscalls_per_process(run: list[str], env: dict[str, str], where: Path) -> list[dict]:
    """One ``strace -ff`` of ``run``: per process, what it executed and its system call counts."""
    prefix = where / "trace"
    subprocess.run(["strace", "-f", "-ff", "-o", str(prefix), *run], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = []
    for path in sorted(where.glob("trace.*"), key=lambda p: int(p.suffix[1:])):
        calls: Counter[str] = Counter()
        execs = []
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"(\w+)\(", line)
            if m:
                calls[m.group(1)] += 1
                if m.group(1) == "execve" and "= 0" in line:
                    execs.append(line.split('"')[1])
        out.append({"pid": int(path.suffix[1:]), "exec": execs, "calls": sum(calls.values()),
                    "top": calls.most_common(8)})
        path.unlink()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="run-phases-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        run_latency.prepare(work, ["pybuild"])  # imports the image, compiles byte-code, sets PYBUILD_ROOT
        env = {**os.environ, "PYBUILD_NETWORK": "host"}
        run = ["run", "--rm", run_latency.IMAGE, "true"]
        listing = work / "modules.txt"
        subprocess.run([str(Path(PY).with_name("pybuild")), *run], check=True,
                       env={**env, "PYBUILD_IMPORTS_OUT": str(listing)})
        ours = [m for m in listing.read_text().split()
                if m.split(".")[0] in ("builder", "registry", "runner", "base")]
        commands = {
            "python -S -c pass": [PY, "-S", "-c", "pass"],
            "python -c pass": [PY, "-c", "pass"],
            "import builder.cli": [PY, "-c", "import builder.cli"],
            "import the run path": [PY, "-c", "import " + ", ".join(ours)],
            "pybuild run --rm IMAGE true": [str(Path(PY).with_name("pybuild")), *run],
        }
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
        inside: list[list[float]] = []
        for _ in range(args.reps):
            for name, cmd in commands.items():
                samples[name].append(cpu_wall(cmd, env))
            probe = subprocess.run([PY, "-c", PROBE, *run], check=True, env=env, capture_output=True, text=True)
            inside.append([float(x) for x in probe.stdout.split()[:4]])
        traced = syscalls_per_process([str(Path(PY).with_name("pybuild")), *run], env, work)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.reps} interleaved rounds, medians (wall / CPU ms)")
    for name, values in samples.items():
        print(f"  {name:<30} {statistics.median(w for w, _ in values) * 1000:7.1f} "
              f"{statistics.median(c for _, c in values) * 1000:7.1f}")
    med = [statistics.median(x[i] for x in inside) * 1000 for i in range(4)]
    print(f"  in-process: import builder.cli {med[0]:.1f} ms CPU; main() in the caller {med[1]:.1f} ms CPU "
          f"(imports of the run path included); shim and container {med[2]:.1f} ms CPU; wall {med[3]:.1f} ms")
    for proc in traced:
        print(f"  pid {proc['pid']}: {proc['calls']} syscalls, exec {proc['exec'] or '-'}; top {proc['top']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": samples, "inside_ms": med, "strace": traced}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
