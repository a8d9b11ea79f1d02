"""Issue 14's table in one run: the four rows where pybuild was behind, against every peer.

Rows (each tool interleaved round by round, so background load hits all alike):

- ``rebuild``: a fully cached rebuild of the small busybox project (``bench/build.py``'s
  ``small``): pybuild, docker 20.10 (``DOCKER_BUILDKIT=0``), podman, buildah;
- ``run``: ``run --rm IMAGE true``: pybuild, docker, podman, runc on a prepared bundle
  (``bench/run_latency.py``'s set-up);
- ``files20k``: a cold (``--no-cache``) build whose COPY brings 20,000 small files:
  pybuild, buildah, docker, podman;
- ``push``: one image with a ~270 MB gzip layer (random bytes) pushed to a fresh local
  ``docker-registry`` each time: pybuild, ``skopeo copy`` from an OCI layout holding the
  same blobs, and the physical limit: a bare monolithic ``PUT`` of the blob file with curl
  (``POST`` for the upload location, untimed, then ``curl -T``; no client-side hashing).

``--baseline REV`` adds pybuild at another git revision (e.g. ``main``) to every row, so "before"
and "after" are measured in the same run.  Each cell: median of ``--reps`` runs (at
least 5), min-max, and CPU time (user + system of the command and its children; the
docker and podman daemons' and the registry's CPU are not included).  The load average
is recorded before and after each row.  Ratios are pybuild's median over the peer's
median from the same run; absolute times move with the machine's load.

Run as root with dockerd running:
    .venv/bin/python bench/issue14.py [--reps 5] [--rows rebuild,run,files20k,push]
        [--baseline main] [--push-mib 256] [--json OUT] [--write-docs docs/performance.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO), str(REPO / "tests")]

import build as build_bench  # noqa: E402
import run_latency  # noqa: E402

from differential.harness import base_rootfs_tar  # noqa: E402
from registry_fixtures import start_registry  # noqa: E402

PYBUILD = str(Path(sys.executable).with_name("pybuild"))
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
BUILDAH = ["buildah", "--storage-driver", "overlay"]
MIB = 1 << 20
BASE = "bench14-busybox"
ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}

Sample = tuple[float, float]  # wall s, CPU s


def timed(cmd: list[str], env: dict[str, str] | None = None) -> Sample:
    """Run ``cmd``; (wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-600:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def quiet(cmd: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=env or ENV)


def interleave(tools: dict[str, Callable[[], Sample]], reps: int, label: str) -> dict[str, list[Sample]]:
    """``reps`` rounds, every tool once per round, the order rotated each round."""
    names = list(tools)
    out: dict[str, list[Sample]] = {n: [] for n in names}
    for r in range(reps):
        for name in names[r % len(names):] + names[:r % len(names)]:
            out[name].append(tools[name]())
            print(f"  {label} round {r + 1} {name}: {out[name][-1][0]:.3f}s", flush=True)
    return out


class Pybuilds:
    """The pybuild(s) under test, sharing one store.

    The baseline is another git revision of this repository, exported and byte-compiled
    like this tree, and run by the same interpreter with its source first on ``PYTHONPATH``
    (the venv's own install comes later on ``sys.path``), so both start the same way.
    """

    LAUNCH = "import sys; from builder.cli import main; sys.exit(main())"

    def __init__(self, work: Path, baseline: str | None):
        self.root = work / "pybuild-root"
        self.bins = {"pybuild": [PYBUILD]}
        self.env = {**ENV, "PYBUILD_ROOT": str(self.root), "PYBUILD_NETWORK": "host"}
        self.baseline_src: Path | None = None
        if baseline:
            self.baseline_src = work / "baseline-src"
            self.baseline_src.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", baseline], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(self.baseline_src)], input=archive.stdout, check=True)
            subprocess.run([sys.executable, "-m", "compileall", "-q", "builder", "registry", "runner", "base"],
                           cwd=self.baseline_src, check=True, stdout=subprocess.DEVNULL)
            self.bins[f"pybuild {baseline}"] = [sys.executable, "-c", self.LAUNCH]

    def env_for(self, name: str, env: dict[str, str] | None = None) -> dict[str, str]:
        """``env`` (default: the bench's) for the pybuild called ``name``."""
        env = env or self.env
        if name == "pybuild" or self.baseline_src is None:
            return env
        return {**env, "PYTHONPATH": str(self.baseline_src)}


# ---- rows -------------------------------------------------------------------------------


def _workload(name: str) -> dict[str, str]:
    """``bench/build.py``'s workload files, on this bench's own base image name."""
    return {rel: text.replace("FROM bench-busybox", f"FROM {BASE}") for rel, text in build_bench.WORKLOADS[name][1].items()}


def _busybox_everywhere(work: Path, pb: Pybuilds, peers: list[str]) -> None:
    tar = work / "busybox.tar"
    if tar.exists():
        return
    base_rootfs_tar(tar)
    quiet([PYBUILD, "import", str(tar), BASE], pb.env)
    if "docker" in peers:
        quiet(["docker", "import", str(tar), BASE])
    if "podman" in peers or "buildah" in peers:
        quiet([*PODMAN, "import", str(tar), BASE])


def _build_cmds(ctx: Path, tag: str, no_cache: bool, pb: Pybuilds, peers: list[str]) -> dict[str, list[str]]:
    nc = ["--no-cache"] if no_cache else []
    cmds = {name: [*exe, "build", "-q", "-t", tag, *nc, str(ctx)] for name, exe in pb.bins.items()}
    if "docker" in peers:
        cmds["docker 20.10"] = ["docker", "build", "-q", "-t", tag, *nc, str(ctx)]
    if "podman" in peers:
        cmds["podman 4.3"] = [*PODMAN, "build", "-q", *ULIMITS, "-t", tag, *nc, str(ctx)]
    if "buildah" in peers:
        cmds["buildah 1.28"] = [*BUILDAH, "build", "--runtime", "runc", "--layers", "-q", *ULIMITS, "-t", tag, *nc,
                                str(ctx)]
    return cmds


def row_rebuild(work: Path, pb: Pybuilds, peers: list[str], reps: int) -> dict[str, list[Sample]]:
    _busybox_everywhere(work, pb, peers)
    tools = {}
    for i, (name, cmd) in enumerate(_build_cmds(Path("CTX"), "bench14-small:1", False, pb, peers).items()):
        ctx = build_bench._make_context("small", str(i), _workload("small"), work)
        cmd = [str(ctx) if c == "CTX" else c for c in cmd]
        env = pb.env_for(name) if name.startswith("pybuild") else ENV
        timed(cmd, env)  # the first build fills the cache
        tools[name] = (lambda c=cmd, e=env: timed(c, e))
    return interleave(tools, reps, "rebuild")


def row_files20k(work: Path, pb: Pybuilds, peers: list[str], reps: int) -> dict[str, list[Sample]]:
    _busybox_everywhere(work, pb, peers)
    ctx = build_bench._make_context("files20k", "all", _workload("files20k"), work)
    tools = {}
    for name, cmd in _build_cmds(ctx, "bench14-files:1", True, pb, peers).items():
        env = pb.env_for(name) if name.startswith("pybuild") else ENV
        tools[name] = (lambda c=cmd, e=env: timed(c, e))
    return interleave(tools, reps, "files20k")


def row_run(work: Path, pb: Pybuilds, peers: list[str], reps: int) -> dict[str, list[Sample]]:
    commands = run_latency.prepare(work / "run", ["pybuild", *[p for p in peers if p in ("docker", "podman", "runc")]])
    env = {**pb.env, "PYBUILD_ROOT": str(work / "run" / "pybuild-root")}  # where prepare() imported the image
    labels = {"docker": "docker 20.10", "podman": "podman 4.3", "runc": "runc 1.1 (prepared bundle)"}
    tools: dict[str, Callable[[], Sample]] = {}
    for name, exe in pb.bins.items():
        cmd, run_env = [*exe, *commands["pybuild"][1:]], pb.env_for(name, env)
        timed(cmd, run_env)
        tools[name] = (lambda c=cmd, e=run_env: timed(c, e))
    counter = iter(range(1 << 30))
    for peer in ("docker", "podman", "runc"):
        if peer in commands:
            cmd = commands[peer]
            if peer == "runc":
                tools[labels[peer]] = (lambda c=cmd: timed([*c, f"bench14-{os.getpid()}-{next(counter)}"]))
            else:
                tools[labels[peer]] = (lambda c=cmd: timed(c))
    out = interleave(tools, reps, "run")
    if "docker" in commands:
        subprocess.run(["docker", "rmi", run_latency.IMAGE], capture_output=True)
    if "podman" in commands:
        subprocess.run([*PODMAN, "rmi", run_latency.IMAGE], capture_output=True)
    return out


class PushRow:
    """A pushed image with a ~270 MB gzip layer; every push goes to a fresh registry."""

    def __init__(self, work: Path, pb: Pybuilds, size_mib: int):
        self.work, self.pb = work / "push", pb
        self.work.mkdir()
        rootfs = self.work / "rootfs"
        rootfs.mkdir()
        with open(rootfs / "payload.bin", "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(MIB))
        quiet([PYBUILD, "import", str(rootfs), "bench14-push:1"], pb.env)
        shutil.rmtree(rootfs)
        from registry.store import Store

        store = Store(pb.root)
        layer = max(store.image("bench14-push:1").layers, key=lambda d: d.size)
        self.blob, self.digest, self.size = store.blob_path(layer.digest), layer.digest, layer.size
        self.layout = self.work / "layout"
        quiet([PYBUILD, "copy", "store:bench14-push:1", f"oci:{self.layout}:bench"], pb.env)
        self.count = 0

    def _fresh(self):
        self.count += 1
        return start_registry(self.work / f"registry-{self.count}", "plain")

    def _with_registry(self, push: Callable[[str], Sample]) -> Sample:
        reg = self._fresh()
        try:
            return push(reg.host)
        finally:
            reg.stop()
            shutil.rmtree(reg.workdir, ignore_errors=True)

    def pybuild(self, name: str) -> Sample:
        def push(host: str) -> Sample:
            shutil.rmtree(self.pb.root / "distribution", ignore_errors=True)  # no mount hints: a real upload
            return timed([*self.pb.bins[name], "push", "-q", "bench14-push:1", f"{host}/bench/pybuild:1"],
                         self.pb.env_for(name))
        return self._with_registry(push)

    def skopeo(self) -> Sample:
        return self._with_registry(lambda host: timed(
            ["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{self.layout}:bench",
             f"docker://{host}/bench/skopeo:1"]))

    def bare_put(self) -> Sample:
        import httpx

        def push(host: str) -> Sample:
            started = httpx.post(f"http://{host}/v2/bench/put/blobs/uploads/")
            location = httpx.URL(f"http://{host}").join(started.headers["location"])
            url = str(location.copy_add_param("digest", self.digest))
            return timed(["curl", "-sSf", "-o", "/dev/null", "-T", str(self.blob),
                          "-H", "Content-Type: application/octet-stream", url])
        return self._with_registry(push)


def row_push(work: Path, pb: Pybuilds, peers: list[str], reps: int, size_mib: int) -> tuple[dict, int]:
    row = PushRow(work, pb, size_mib)
    tools: dict[str, Callable[[], Sample]] = {
        name: (lambda n=name: row.pybuild(n)) for name in pb.bins}
    if "skopeo" in peers:
        tools["skopeo 1.9 (from an OCI layout)"] = row.skopeo
    tools["bare monolithic PUT (curl -T)"] = row.bare_put
    return interleave(tools, reps, "push"), row.size


# ---- report -----------------------------------------------------------------------------


def cell(samples: list[Sample]) -> str:
    walls = [w for w, _ in samples]
    cpu = statistics.median(c for _, c in samples)
    return (f"{_fmt(statistics.median(walls))} ({_fmt(min(walls))}-{_fmt(max(walls))}) | {_fmt(cpu)}")


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def report(results: dict) -> str:
    lines = [f"Measured {results['when']} on {results['machine']}; {results['reps']} interleaved rounds per row.", ""]
    for row in results["rows"].values():
        samples = row["samples"]
        ours = statistics.median(w for w, _ in samples["pybuild"])
        lines += [f"**{row['title']}** (load average {row['load'][0]:.1f} before, {row['load'][1]:.1f} after)", "",
                  "| tool | median wall (min-max) | CPU | pybuild / tool |", "| --- | --- | --- | --- |"]
        for tool, s in samples.items():
            ratio = "" if tool == "pybuild" else f"{ours / statistics.median(w for w, _ in s):.2f}x"
            lines.append(f"| {tool} | {cell(s)} | {ratio} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_docs(path: Path, text: str) -> None:
    begin, end = "<!-- issue14:begin -->", "<!-- issue14:end -->"
    doc = path.read_text()
    if begin in doc:
        head, rest = doc.split(begin, 1)
        doc = head + begin + "\n" + text + end + rest.split(end, 1)[1]
    else:
        doc += f"\n{begin}\n{text}{end}\n"
    path.write_text(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rows", default="rebuild,run,files20k,push")
    ap.add_argument("--peers", default="docker,podman,buildah,runc,skopeo")
    ap.add_argument("--baseline", help="a git revision of this repository measured beside the work tree (e.g. main)")
    ap.add_argument("--push-mib", type=int, default=256, help="random payload; its gzip layer is ~1.05x this in MB")
    ap.add_argument("--json")
    ap.add_argument("--write-docs")
    args = ap.parse_args()
    if args.reps < 5:
        ap.error("--reps: at least 5")
    peers = args.peers.split(",")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "builder", "registry", "runner", "base"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="bench-issue14-", dir="/var/tmp"))
    pb = Pybuilds(work, args.baseline)
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    results: dict = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "reps": args.reps,
                     "machine": f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, "
                                f"Python {platform.python_version()}", "rows": {}}
    titles = {"rebuild": "Fully cached rebuild of the small project",
              "run": "`run --rm IMAGE /bin/true`",
              "files20k": "Cold build: COPY of 20,000 small files",
              "push": "Push of a {mb} MB gzip layer to a fresh local registry"}
    try:
        for name in args.rows.split(","):
            load_before = os.getloadavg()[0]
            title = titles[name]
            if name == "push":
                samples, size = row_push(work, pb, peers, args.reps, args.push_mib)
                title = title.format(mb=round(size / 1e6))
            else:
                samples = {"rebuild": row_rebuild, "run": row_run, "files20k": row_files20k}[name](
                    work, pb, peers, args.reps)
            results["rows"][name] = {"title": title, "samples": samples, "load": [load_before, os.getloadavg()[0]]}
    finally:
        for tag in ("bench14-small:1", "bench14-files:1", BASE):
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
            subprocess.run([*PODMAN, "rmi", "-f", tag], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    text = report(results)
    print("\n" + text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.write_docs:
        write_docs(Path(args.write_docs), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
