"""``run --rm IMAGE true`` on each tool's default *bridge* network: pybuild vs docker vs podman.

Usage: python bench/run_latency_bridge.py [--reps N] [--tools pybuild,docker,podman] [--json FILE]

Everything runs inside one network namespace made for the bench (``ip netns add``),
so no bridge, veth or iptables rule reaches the host's own network:

- pybuild: its default network (``bridge``: CNI bridge + host-local, firewall);
- docker: a dockerd of the bench's own (data root, exec root, socket, containerd
  namespace under a temp dir) started in the namespace with ``--iptables=true``, so
  docker's default bridge ``docker0`` and its NAT rules live there;
- podman: CNI backend (podman 4.3), its config dir under the temp dir.

Rounds are interleaved; prints medians/quartiles and pybuild's ratio to each.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_latency import PODMAN_RUN, PYBUILD, make_rootfs, measure  # noqa: E402

IMAGE = "pybuild-bench-bridge"


def start_dockerd(ns: list[str], work: Path) -> tuple[subprocess.Popen, list[str]]:
    """A private dockerd in the bench's namespace; returns it and the client prefix."""
    sock = work / "docker.sock"
    daemon = subprocess.Popen(
        ns + ["dockerd", "--data-root", str(work / "docker"), "--exec-root", str(work / "docker-exec"),
              "--pidfile", str(work / "docker.pid"), "-H", f"unix://{sock}", "--iptables=true",
              "--containerd-namespace", f"pbbench{os.getpid()}", "--containerd-plugins-namespace",
              f"pbbench{os.getpid()}p", "--bip", "172.31.250.1/24"],
        stdout=subprocess.DEVNULL, stderr=open(work / "dockerd.log", "w"))
    client = ["docker", "-H", f"unix://{sock}"]
    deadline = time.monotonic() + 60
    while subprocess.run(client + ["info"], capture_output=True).returncode != 0:
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"dockerd did not start; see {work / 'dockerd.log'}")
        time.sleep(0.2)
    return daemon, client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--tools", default="pybuild,docker,podman")
    parser.add_argument("--json", help="write the raw timings here")
    args = parser.parse_args()
    tools = args.tools.split(",")
    netns = f"pybuild-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    ns = ["nsenter", f"--net=/run/netns/{netns}"]
    daemon = None
    try:
        with tempfile.TemporaryDirectory(prefix="run-latency-bridge-") as tmp:
            work = Path(tmp)
            rootfs = make_rootfs(work / "rootfs")
            tar = work / "rootfs.tar"
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
            commands: dict[str, list[str]] = {}
            if "pybuild" in tools:
                os.environ["PYBUILD_ROOT"] = str(work / "pybuild-root")
                os.environ.pop("PYBUILD_NETWORK", None)
                subprocess.run([PYBUILD, "import", str(rootfs), IMAGE], check=True, stdout=subprocess.DEVNULL)
                commands["pybuild"] = ns + [PYBUILD, "run", "--rm", IMAGE, "true"]
            if "docker" in tools:
                daemon, client = start_dockerd(ns, work)
                subprocess.run(client + ["import", str(tar), IMAGE], check=True, stdout=subprocess.DEVNULL)
                commands["docker"] = ns + client + ["run", "--rm", IMAGE, "true"]
            if "podman" in tools:
                (work / "cni").mkdir()
                podman = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--network-backend", "cni",
                          "--cni-config-dir", str(work / "cni"), "--root", str(work / "podman"),
                          "--runroot", str(work / "podman-run")]
                subprocess.run(ns + podman + ["import", str(tar), IMAGE], check=True, stdout=subprocess.DEVNULL)
                commands["podman"] = ns + podman + ["run", "--rm", *PODMAN_RUN, IMAGE, "true"]
            try:
                samples = measure(commands, args.reps)[0]  # warm-up makes each bridge
            finally:
                if daemon is not None:
                    subprocess.run(client + ["rmi", IMAGE], capture_output=True)
                    daemon.terminate()
                    daemon.wait()
                    daemon = None
                if "podman" in commands:
                    subprocess.run(ns + podman + ["system", "reset", "-f"], capture_output=True)
    finally:
        if daemon is not None:
            daemon.kill()
        subprocess.run(["ip", "netns", "del", netns])
    print(f"{'tool':<10}{'median ms':>10}{'p25':>8}{'p75':>8}   (n={args.reps}, interleaved, bridge networks, "
          f"load avg {os.getloadavg()[0]:.2f})")
    medians = {}
    for name, values in samples.items():
        q = statistics.quantiles(values, n=4)
        medians[name] = statistics.median(values)
        print(f"{name:<10}{medians[name] * 1000:>10.1f}{q[0] * 1000:>8.1f}{q[2] * 1000:>8.1f}")
    for other in ("docker", "podman"):
        if "pybuild" in medians and other in medians:
            print(f"pybuild / {other}: {medians['pybuild'] / medians[other]:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(samples, indent=1))


if __name__ == "__main__":
    main()
