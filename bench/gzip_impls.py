"""Throughput of the gzip implementations on PyPI at their fast levels, on mixed data.

Usage: python bench/gzip_impls.py TARFILE [MiB]. Each output is checked with ``gzip -t``.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
import zlib
from typing import Callable

from isal import igzip_threaded, isal_zlib
from zlib_ng import gzip_ng_threaded, zlib_ng

CHUNK = 1 << 20


def _stream(module, level: int) -> Callable[[memoryview], bytes]:
    def run(data: memoryview) -> bytes:
        comp = module.compressobj(level, module.DEFLATED, 31)
        out = [comp.compress(data[i:i + CHUNK]) for i in range(0, len(data), CHUNK)]
        out.append(comp.flush())
        return b"".join(out)
    return run


def _threaded(opener, level: int, threads: int) -> Callable[[memoryview], bytes]:
    def run(data: memoryview) -> bytes:
        buf = io.BytesIO()
        with opener(buf, "wb", compresslevel=level, threads=threads) as f:
            for i in range(0, len(data), CHUNK):
                f.write(data[i:i + CHUNK])
            f.flush()
            return buf.getvalue()
    return run


IMPLS: dict[str, Callable[[memoryview], bytes]] = {
    "zlib (stdlib) -1": _stream(zlib, 1),
    "zlib (stdlib) -6": _stream(zlib, 6),
    "zlib-ng zlib_ng -1": _stream(zlib_ng, 1),
    "zlib-ng gzip_ng_threaded -1 t=2": _threaded(gzip_ng_threaded.open, 1, 2),
    "isal isal_zlib -0": _stream(isal_zlib, 0),
    "isal isal_zlib -1": _stream(isal_zlib, 1),
    "isal isal_zlib -2": _stream(isal_zlib, 2),
    "isal igzip_threaded -1 t=2": _threaded(igzip_threaded.open, 1, 2),
}


def main() -> None:
    size = int(sys.argv[2]) << 20 if len(sys.argv) > 2 else 256 << 20
    with open(sys.argv[1], "rb") as f:
        data = memoryview(f.read(size))
    print(f"| implementation | MB/s (median of 3) | ratio | gzip -t |")
    print("| --- | ---: | ---: | --- |")
    for name, run in IMPLS.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            out = run(data)
            times.append(time.perf_counter() - start)
        ok = subprocess.run(["gzip", "-t"], input=out).returncode == 0
        mbps = len(data) / statistics.median(times) / 1e6
        print(f"| {name} | {mbps:.0f} | {len(out) / len(data):.3f} | {'ok' if ok else 'FAIL'} |", flush=True)


if __name__ == "__main__":
    main()
