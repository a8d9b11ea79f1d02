"""API round trips through ``pybuild system service`` vs dockerd, same docker client, one run.

Usage: python bench/service_api.py [--reps N] [--json FILE]

One busybox rootfs is imported on both sides (``pybuild import`` into a fresh root,
``docker import`` into dockerd); the service is started on a socket in that root.  Rounds
are interleaved (service, dockerd, service, ...) so both see the same machine load.
Commands: ``docker ps`` and ``docker run --rm --network host IMAGE true`` (the host
network on both sides: no bridge setup in either number).  Prints median and quartiles.
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
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import make_busybox_rootfs  # noqa: E402

PYBUILD = str(Path(sys.executable).with_name("pybuild"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--json", help="write the raw timings here")
    args = parser.parse_args()
    image = f"bench-service-{uuid.uuid4().hex[:8]}:1"
    with tempfile.TemporaryDirectory(prefix="bench-service-") as work:
        root = Path(work) / "root"
        rootfs = make_busybox_rootfs(Path(work) / "rootfs")
        env = {**os.environ, "PYBUILD_ROOT": str(root), "PYBUILD_NETWORK": "host"}
        subprocess.run([PYBUILD, "import", str(rootfs), image], env=env, check=True, stdout=subprocess.DEVNULL)
        tar = Path(work) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        subprocess.run(["docker", "import", str(tar), image], check=True, stdout=subprocess.DEVNULL)
        socket = root / "api.sock"
        service = subprocess.Popen([PYBUILD, "system", "service", "--socket", f"unix://{socket}"], env=env,
                                   stderr=subprocess.PIPE)
        service.stderr.readline()  # type: ignore[union-attr]  # "serving ..." once it listens
        sides = {"service": {**os.environ, "DOCKER_HOST": f"unix://{socket}"},
                 "dockerd": {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}}
        commands = {"ps": ["docker", "ps"], "run --rm true": ["docker", "run", "--rm", "--network", "host", image, "true"]}
        times: dict[str, dict[str, list[float]]] = {c: {s: [] for s in sides} for c in commands}
        try:
            for _ in range(args.reps):
                for cname, cmd in commands.items():
                    for side, side_env in sides.items():
                        start = time.perf_counter()
                        subprocess.run(cmd, env=side_env, check=True, stdout=subprocess.DEVNULL)
                        times[cname][side].append(time.perf_counter() - start)
        finally:
            service.terminate()
            service.wait()
            subprocess.run(["docker", "rmi", image], stdout=subprocess.DEVNULL)
    for cname, per_side in times.items():
        for side, values in per_side.items():
            q = statistics.quantiles(values, n=4)
            print(f"{cname:<16} {side:<8} median {statistics.median(values) * 1000:7.1f} ms "
                  f"(q1 {q[0] * 1000:.1f}, q3 {q[2] * 1000:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(times))


if __name__ == "__main__":
    main()
