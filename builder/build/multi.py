"""One build for several platforms: one executor per platform, then an OCI image index.

Platforms do not depend on each other, so they build concurrently, as many at once
as there are cores (emulated RUN steps are CPU-bound).  Each platform's image is
committed unnamed; the index over them gets the build's tags.  The store's GC lock
is held from the first blob to the tag, so a ``prune`` in between removes nothing.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from registry import oci

from .executor import Executor, StoredImageResult


def build_index(executors: list[Executor], store, tags: list[str]) -> StoredImageResult:
    """Build every executor's image and name the index over them ``tags``; return the index."""
    with store.transaction():
        results = _build_all(executors)
        assert all(result.descriptor is not None for result in results)  # every build stores its image
        index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                 "manifests": [result.descriptor.to_json() for result in results]}  # type: ignore[union-attr]
        desc = store.put_json(index, oci.OCI_INDEX)
        for tag in tags:
            store.tag(tag, desc)
        if not tags:
            store.keep(desc)
    return StoredImageResult(desc.digest, index, desc)


def _build_all(executors: list[Executor]) -> list[StoredImageResult]:
    workers = max(1, min(len(executors), os.cpu_count() or 1))
    if workers == 1:
        return [executor.build() for executor in executors]
    with ThreadPoolExecutor(workers, thread_name_prefix="platform") as pool:
        futures = [pool.submit(executor.build) for executor in executors]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            for executor in executors:
                executor.cancel()
            raise
        failed = [f for f in done if f.exception() is not None]
        if failed:
            for executor in executors:
                executor.cancel()
            wait(futures)
            raise failed[0].exception()  # type: ignore[misc]
        return [f.result() for f in futures]
