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
from pathlib import Path
from typing import Callable

from isal import igzip_threaded, isal_zlib
from zlib_ng import gzip_ng_threaded, zlib_ng

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from registry.layer.compress import GzipCodec  # noqa: E402

CHUNK = 1 << 20


def _stream(module, level: int) -> Callable[[memoryview], bytes]:
    def run(data: memoryview) -> bytes:
        comp = module.compressobj(level, module.DEFLATED, 31)
        out = [comp.compress(data[i:i + CHUNK]) for i in range(0, len(data), CHUNK)]
        out.append(comp.flush())
        return b"".join(out)
    return run


class _Sink(io.BytesIO):
    def close(self) -> None:  # keep the bytes readable after the gzip writer closes us
        pass


def _threaded(opener, level: int, threads: int) -> Callable[[memoryview], bytes]:
    def run(data: memoryview) -> bytes:
        buf = _Sink()
        with opener(buf, "wb", compresslevel=level, threads=threads) as f:
            for i in range(0, len(data), CHUNK):
                f.write(data[i:i + CHUNK])
        return buf.getvalue()
    return run


def _pybuild(level: int) -> Callable[[memoryview], bytes]:
    def run(data: memoryview) -> bytes:
        codec = GzipCodec(level)
        out = [codec.begin()]
        for i in range(0, len(data), CHUNK):
            codec.observe(data[i:i + CHUNK])
            out.append(codec.segment(data[i:i + CHUNK]))
        out.append(codec.end())
        return b"".join(out)
    return run


IMPLS: dict[str, Callable[[memoryview], bytes]] = {
    "zlib (stdlib) -1": _stream(zlib, 1),
    "zlib-ng zlib_ng -1": _stream(zlib_ng, 1),
    "zlib-ng gzip_ng_threaded -1 t=2": _threaded(gzip_ng_threaded.open, 1, 2),
    "isal isal_zlib -0": _stream(isal_zlib, 0),
    "isal isal_zlib -1": _stream(isal_zlib, 1),
    "isal isal_zlib -2": _stream(isal_zlib, 2),
    "isal igzip_threaded -1 t=2": _threaded(igzip_threaded.open, 1, 2),
    "pybuild GzipCodec -1 (isal, stored blocks for incompressible parts)": _pybuild(1),
}


def measure(data: bytes, impls: dict[str, Callable[[memoryview], bytes]]) -> list[str]:
    """Markdown table rows: throughput (median of 3), ratio, and whether ``gzip -t`` accepts the output."""
    view = memoryview(data)
    rows = ["| implementation | MB/s | ratio | gzip -t |", "| --- | ---: | ---: | --- |"]
    for name, run in impls.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            out = run(view)
            times.append(time.perf_counter() - start)
        ok = subprocess.run(["gzip", "-t"], input=out).returncode == 0
        mbps = len(view) / statistics.median(times) / 1e6
        rows.append(f"| {name} | {mbps:.0f} | {len(out) / len(view):.3f} | {'ok' if ok else 'FAIL'} |")
    return rows


def main() -> None:
    size = int(sys.argv[2]) << 20 if len(sys.argv) > 2 else 256 << 20
    with open(sys.argv[1], "rb") as f:
        data = f.read(size)
    print("\n".join(measure(data, IMPLS)))


if __name__ == "__main__":
    main()
