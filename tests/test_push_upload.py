"""Pushing a large blob: hashed while it is sent, never sent whole when corrupt (issue 14, push).

Blobs above 4 MiB are read ahead in a thread that verifies them (registry/remote/image.py);
the digest is checked before the last piece leaves, so the registry never gets a corrupt
blob whole, wherever the flipped byte sits.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import CLI
from registry.store import Store
from registry_fixtures import Registry

MIB = 1 << 20


def big_image(cli: CLI, tmp_path: Path, name: str) -> str:
    """An image whose one layer is a ~12 MB gzip blob of random bytes; returns the layer digest."""
    tree = tmp_path / f"tree-{name}"
    tree.mkdir()
    (tree / "payload.bin").write_bytes(os.urandom(12 * MIB))
    cli("import", str(tree), name)
    return Store(cli.root).image(name).layers[0].digest


def registry_status(reg: Registry, path: str) -> int:
    request = urllib.request.Request(f"http://{reg.host}{path}", method="HEAD", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.registry
def test_a_large_blob_goes_up_intact(plain_registry: Registry, pybuild: CLI, tmp_path: Path, root: Path):
    digest = big_image(pybuild, tmp_path, "big:1")
    target = f"{plain_registry.host}/push-upload/big:1"
    pybuild("push", "-q", "big:1", target)
    assert registry_status(plain_registry, f"/v2/push-upload/big/blobs/{digest}") == 200
    other = CLI(tmp_path / "other-root")
    other.root.mkdir()
    other("pull", "-q", target)
    assert Store(other.root).blob_path(digest).read_bytes() == Store(root).blob_path(digest).read_bytes()


@pytest.mark.registry
@pytest.mark.parametrize("where", ["start", "end"])
def test_a_corrupt_large_blob_never_reaches_the_registry(plain_registry: Registry, pybuild: CLI, tmp_path: Path,
                                                          where: str):
    digest = big_image(pybuild, tmp_path, "big:1")
    path = Store(pybuild.root).blob_path(digest)
    data = bytearray(path.read_bytes())
    data[100 if where == "start" else len(data) - 100] ^= 0xFF  # "end": in the last piece sent
    path.write_bytes(bytes(data))
    proc = pybuild("push", "big:1", f"{plain_registry.host}/push-upload/bad:1", check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == f"pybuild: error: blob {digest} is corrupt; run pybuild fsck", err
    assert registry_status(plain_registry, f"/v2/push-upload/bad/blobs/{digest}") == 404
    assert registry_status(plain_registry, "/v2/push-upload/bad/manifests/1") == 404
