"""Registry transfer benchmark: push and pull an image with one big layer over loopback.

Side by side in the same run, interleaved round by round (medians of ``--rounds``):

- push: ``pybuild push`` (store -> registry), ``skopeo copy oci:LAYOUT docker://`` (the
  same compressed blobs from an OCI layout), ``docker push`` (image loaded into dockerd);
- pull: ``pybuild pull`` (into an empty store), ``skopeo copy docker:// oci:DIR``,
  ``docker pull`` (after removing every image that shares the layer);
- a no-op push (every blob present): time inside ``push_image`` (network and
  registry only, no interpreter start-up) and the whole CLI;
- peak RSS of pybuild push/pull for a small and the big image (memory flat?).

Each push goes to a fresh ``docker-registry`` (no blob already there); pulls come
from a registry holding the image pushed by pybuild.  Throughput = layer bytes / wall time.

Usage: python bench/registry_transfer.py [--size-mib 512] [--rounds 3] [--dir /var/tmp/pybuild-bench-registry]
                                         [--no-docker] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from registry_fixtures import Registry, start_registry  # noqa: E402

PYBUILD = str(Path(sys.executable).parent / "pybuild")
MIB = 1 << 20


def timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run a command; return (wall seconds, peak RSS in KiB from /usr/bin/time)."""
    started = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.monotonic() - started
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{err}")
    return elapsed, int(err.strip().splitlines()[-1])


def quiet(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(args, check=True, capture_output=True, env=env)


class Bench:
    def __init__(self, workdir: Path, size_mib: int, docker: bool):
        self.dir = workdir
        self.size = size_mib * MIB
        self.docker = docker
        self.root = workdir / "root"
        self.layout = workdir / "layout"
        self.env = {**os.environ, "PYBUILD_ROOT": str(self.root), "DOCKER_CONFIG": str(workdir / "docker-config")}
        self.registries: list[Registry] = []
        self.layer_bytes = 0

    def env_for(self, root: Path) -> dict[str, str]:
        return {**self.env, "PYBUILD_ROOT": str(root)}

    def make_image(self, name: str, size: int) -> int:
        rootfs = self.dir / f"rootfs-{name}"
        rootfs.mkdir(parents=True, exist_ok=True)
        with open(rootfs / "payload.bin", "wb") as f:
            for _ in range(size // MIB):
                f.write(os.urandom(MIB))
        quiet(PYBUILD, "import", str(rootfs), f"{name}:1", env=self.env)
        shutil.rmtree(rootfs)
        from registry.store import Store

        return max(layer.size for layer in Store(self.root).image(f"{name}:1").layers)

    def registry(self) -> Registry:
        reg = start_registry(self.dir / f"registry-{len(self.registries)}", "plain")
        self.registries.append(reg)
        return reg

    def drop(self, reg: Registry) -> None:
        reg.stop()
        shutil.rmtree(reg.workdir, ignore_errors=True)

    def setup(self) -> None:
        self.layer_bytes = self.make_image("bench", self.size)
        self.small_bytes = self.make_image("small", 64 * MIB)
        quiet(PYBUILD, "copy", "store:bench:1", f"oci:{self.layout}:bench", env=self.env)
        if self.docker:
            quiet(PYBUILD, "copy", "store:bench:1", f"docker-archive:{self.dir / 'bench.tar'}:pybuild-bench:1",
                  env=self.env)

    # ---- pushes ---------------------------------------------------------------------

    def push_pybuild(self) -> float:
        reg = self.registry()
        shutil.rmtree(self.root / "distribution", ignore_errors=True)  # no mount hints: a real upload
        try:
            return timed([PYBUILD, "push", "-q", "bench:1", f"{reg.host}/bench/pybuild:1"], self.env)[0]
        finally:
            self.drop(reg)

    def push_skopeo(self) -> float:
        reg = self.registry()
        try:
            return timed(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{self.layout}:bench",
                          f"docker://{reg.host}/bench/skopeo:1"])[0]
        finally:
            self.drop(reg)

    def push_docker(self) -> float:
        reg = self.registry()
        ref = f"{reg.host}/bench/docker:1"
        try:
            quiet("docker", "load", "-i", str(self.dir / "bench.tar"))
            quiet("docker", "tag", "pybuild-bench:1", ref)
            return timed(["docker", "push", ref])[0]
        finally:
            subprocess.run(["docker", "rmi", "-f", ref, "pybuild-bench:1"], capture_output=True)
            self.drop(reg)

    # ---- pulls ----------------------------------------------------------------------

    def pull_pybuild(self, reg: Registry) -> tuple[float, int]:
        root = self.dir / "pull-root"
        shutil.rmtree(root, ignore_errors=True)
        try:
            return timed([PYBUILD, "pull", "-q", f"{reg.host}/bench/pybuild:1"], self.env_for(root))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def pull_skopeo(self, reg: Registry) -> float:
        target = self.dir / "pull-skopeo"
        shutil.rmtree(target, ignore_errors=True)
        try:
            return timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{reg.host}/bench/pybuild:1",
                          f"oci:{target}:bench"])[0]
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def pull_docker(self, reg: Registry) -> float:
        ref = f"{reg.host}/bench/pybuild:1"
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)
        try:
            return timed(["docker", "pull", ref])[0]
        finally:
            subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)

    # ---- no-op push and memory ------------------------------------------------------

    def noop_push(self, reg: Registry, tries: int = 15) -> dict[str, float]:
        os.environ["DOCKER_CONFIG"] = self.env["DOCKER_CONFIG"]
        from registry.remote import session as session_mod
        from registry.remote.push import push_image
        from registry.store import Store

        store = Store(self.root)
        inside = []
        for _ in range(tries):
            session_mod._sessions.clear()  # a cold session each time: ping and all, as a new process has
            started = time.monotonic()
            push_image(store, "bench:1", f"{reg.host}/bench/pybuild:1")
            inside.append(time.monotonic() - started)
        before = len(reg.requests())
        cli = [timed([PYBUILD, "push", "-q", "bench:1", f"{reg.host}/bench/pybuild:1"], self.env)[0]
               for _ in range(5)]
        requests = (len(reg.requests()) - before) / 5
        return {"in_process_ms": statistics.median(inside) * 1000, "cli_ms": statistics.median(cli) * 1000,
                "requests": requests}

    def memory(self, reg: Registry) -> dict[str, int]:
        out = {}
        for name in ("small", "bench"):
            dest = f"{reg.host}/bench/mem-{name}:1"
            shutil.rmtree(self.root / "distribution", ignore_errors=True)
            out[f"push_{name}_kib"] = timed([PYBUILD, "push", "-q", f"{name}:1", dest], self.env)[1]
            root = self.dir / "mem-root"
            shutil.rmtree(root, ignore_errors=True)
            out[f"pull_{name}_kib"] = timed([PYBUILD, "pull", "-q", dest], self.env_for(root))[1]
            shutil.rmtree(root, ignore_errors=True)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default="/var/tmp/pybuild-bench-registry")
    parser.add_argument("--no-docker", action="store_true")
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args()

    workdir = Path(args.dir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bench = Bench(workdir, args.size_mib, docker=not args.no_docker and shutil.which("docker") is not None)
    load_before = os.getloadavg()
    bench.setup()
    tools = ["pybuild", "skopeo"] + (["docker"] if bench.docker else [])
    push: dict[str, list[float]] = {t: [] for t in tools}
    pull: dict[str, list[float]] = {t: [] for t in tools}
    source = bench.registry()
    quiet(PYBUILD, "push", "-q", "bench:1", f"{source.host}/bench/pybuild:1", env=bench.env)
    for round_ in range(args.rounds):
        order = tools[round_ % len(tools):] + tools[:round_ % len(tools)]
        for tool in order:
            push[tool].append(getattr(bench, f"push_{tool}")())
            result = getattr(bench, f"pull_{tool}")(source)
            pull[tool].append(result[0] if isinstance(result, tuple) else result)
            print(f"round {round_ + 1} {tool}: push {push[tool][-1]:.2f}s pull {pull[tool][-1]:.2f}s", flush=True)
    noop = bench.noop_push(source)
    memory = bench.memory(source)
    for reg in bench.registries:
        reg.stop()

    mb = bench.layer_bytes / 1e6
    results = {"layer_bytes": bench.layer_bytes, "rounds": args.rounds, "cpus": os.cpu_count(),
               "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
               "push_s": push, "pull_s": pull, "noop_push": noop, "memory": memory}
    print(f"\nlayer: {bench.layer_bytes} bytes ({mb:.0f} MB), {args.rounds} rounds, medians; "
          f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
    print(f"{'tool':<8} {'push s':>8} {'push MB/s':>10} {'pull s':>8} {'pull MB/s':>10}")
    for tool in tools:
        p, q = statistics.median(push[tool]), statistics.median(pull[tool])
        print(f"{tool:<8} {p:8.2f} {mb / p:10.0f} {q:8.2f} {mb / q:10.0f}")
    base_push, base_pull = statistics.median(push["pybuild"]), statistics.median(pull["pybuild"])
    for tool in tools[1:]:
        print(f"pybuild vs {tool}: push {statistics.median(push[tool]) / base_push:.2f}x, "
              f"pull {statistics.median(pull[tool]) / base_pull:.2f}x")
    print(f"no-op push: {noop['in_process_ms']:.1f} ms in push_image, {noop['cli_ms']:.0f} ms CLI, "
          f"{noop['requests']:.0f} requests")
    print("peak RSS (KiB): " + ", ".join(f"{k}={v}" for k, v in memory.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
