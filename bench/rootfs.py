"""Build the benchmark rootfs: a realistic mix of file sizes, compressible and random data.

The compressible content is cut from real system files (libraries, docs), the rest is
random (like the already-compressed media, archives and wheels real images carry).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

MIB = 1 << 20
POOL_SOURCES = ("/usr/lib/x86_64-linux-gnu", "/usr/share", "/usr/bin")


def _pool(size: int) -> bytes:
    """``size`` bytes of real, compressible content from system files."""
    parts: list[bytes] = []
    have = 0
    for top in POOL_SOURCES:
        for dirpath, _dirs, files in sorted(os.walk(top)):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as f:
                        data = f.read(4 * MIB)
                except OSError:
                    continue
                parts.append(data)
                have += len(data)
                if have >= size:
                    return b"".join(parts)[:size]
    pool = b"".join(parts)
    return (pool * (size // max(len(pool), 1) + 1))[:size]


def _sizes(rng: random.Random, total: int) -> list[int]:
    """File sizes with an image-like spread: many small files, some medium, a few large."""
    sizes: list[int] = []
    budget = total
    for _ in range(12000):  # configs, scripts, sources: ~48 MiB
        sizes.append(int(rng.lognormvariate(8, 1.2)) % (64 * 1024))
    for _ in range(1500):  # libraries, binaries: ~150 MiB
        sizes.append(rng.randint(16 * 1024, 200 * 1024))
    budget -= sum(sizes)
    while budget > 0:  # a few big blobs (databases, models, archives)
        size = min(budget, rng.randint(8 * MIB, 48 * MIB))
        sizes.append(size)
        budget -= size
    return sizes


def build_rootfs(target: Path, total: int = 512 * MIB, random_share: float = 0.4, seed: int = 1) -> int:
    """Create the rootfs under ``target``; return its byte count. Same seed, same tree."""
    rng = random.Random(seed)
    pool = _pool(64 * MIB)
    written = 0
    for index, size in enumerate(_sizes(rng, total)):
        directory = target / f"d{index % 37:02d}" / f"s{index % 11}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"f{index:05d}.bin"
        if rng.random() < random_share:
            data = rng.randbytes(size)
        else:
            start = rng.randrange(0, len(pool) - size) if size < len(pool) else 0
            data = pool[start:start + size]
        path.write_bytes(data)
        written += len(data)
        if index % 500 == 0:
            (directory / f"l{index:05d}").symlink_to(path.name)
            os.link(path, directory / f"h{index:05d}")
    return written


if __name__ == "__main__":
    import sys

    print(build_rootfs(Path(sys.argv[1])))
