"""``pybuild sbom``: SPDX 2.3 documents of images, checked against dpkg itself and validated with
``spdx-tools`` (an independent implementation of the SPDX schema and rules)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CLI

DPKG_STATUS = """\
Package: hello
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 2.10-3
Maintainer: Santiago Vila <sanvila@debian.org>
Description: example package
 based on GNU hello

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: libepoch1
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 1:2.3.4-5+deb12u1
Maintainer: Someone <someone@example.org>
Homepage: https://example.org/epoch
"""

HELLO_COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hello

Files: *
Copyright: 1992-2022 Free Software Foundation, Inc.
License: GPL-3+

Files: debian/*
License: GPL-3+
"""

APK_INSTALLED = """\
C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
U:https://musl.libc.org/

C:Q1def=
P:busybox
V:1.36.1-r5
A:x86_64
L:GPL-2.0-only
"""

METADATA = """\
Metadata-Version: 2.1
Name: {name}
Version: {version}
{license}
Summary: a test distribution

Long description, not a header: License: nothing
"""


def write_rootfs(base: Path) -> Path:
    """A rootfs that records packages of all three kinds (on top of busybox)."""
    (base / "var/lib/dpkg/status.d").mkdir(parents=True)
    (base / "var/lib/dpkg/status").write_text(DPKG_STATUS)
    (base / "var/lib/dpkg/status.d/distroless-pkg").write_text(
        "Package: distroless-pkg\nVersion: 0.9\nArchitecture: amd64\n")
    (base / "var/lib/dpkg/status.d/distroless-pkg.md5sums").write_text("0123  /usr/bin/x\n")
    (base / "usr/share/doc/hello").mkdir(parents=True)
    (base / "usr/share/doc/hello/copyright").write_text(HELLO_COPYRIGHT)
    (base / "lib/apk/db").mkdir(parents=True)
    (base / "lib/apk/db/installed").write_text(APK_INSTALLED)
    site = base / "usr/lib/python3.11/site-packages"
    for name, version, license_ in (("Requests_Toolbelt", "1.0.0", "License-Expression: Apache-2.0"),
                                    ("six", "1.16.0", "Classifier: License :: OSI Approved :: MIT License"),
                                    ("odd", "0.1", "License: Some Custom Licence")):
        (site / f"{name}-{version}.dist-info").mkdir(parents=True)
        (site / f"{name}-{version}.dist-info/METADATA").write_text(
            METADATA.format(name=name, version=version, license=license_))
    (base / "etc").mkdir(exist_ok=True)
    (base / "etc/os-release").write_text('PRETTY_NAME="Test Linux 1"\nID=debian\nVERSION_ID="12"\n')
    return base


def packages(doc: dict) -> dict[str, dict]:
    return {p["name"]: p for p in doc["packages"] if p["SPDXID"] != "SPDXRef-image"}


def purl(pkg: dict) -> str:
    return pkg["externalRefs"][0]["referenceLocator"]


def validate_spdx(doc: dict, tmp_path: Path) -> None:
    """spdx-tools parses the JSON and reports no validation message."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = tmp_path / "sbom.spdx.json"
    path.write_text(json.dumps(doc))
    messages = validate_full_spdx_document(parse_file(str(path)))
    assert [m.validation_message for m in messages] == []


def sbom(cli: CLI, *args: str) -> dict:
    return json.loads(cli("sbom", *args).stdout)


def test_sbom_lists_dpkg_apk_and_python_packages(pybuild, busybox_rootfs, tmp_path):
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    write_rootfs(rootfs)
    pybuild("import", str(rootfs), "pkgs:1")
    doc = sbom(pybuild, "pkgs:1")
    found = packages(doc)
    assert sorted(found) == sorted(["hello", "libepoch1", "distroless-pkg", "musl", "busybox",
                                    "Requests_Toolbelt", "six", "odd"])  # not the config-files-only one
    assert found["hello"]["versionInfo"] == "2.10-3" and found["hello"]["licenseDeclared"] == "GPL-3.0-or-later"
    assert purl(found["libepoch1"]) == "pkg:deb/debian/libepoch1@1%3A2.3.4-5%2Bdeb12u1?arch=amd64"
    assert found["libepoch1"]["homepage"] == "https://example.org/epoch"
    assert found["musl"]["licenseDeclared"] == "MIT" and purl(found["musl"]) == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"
    assert found["busybox"]["licenseDeclared"] == "GPL-2.0-only"
    assert purl(found["Requests_Toolbelt"]) == "pkg:pypi/requests-toolbelt@1.0.0"
    assert found["Requests_Toolbelt"]["licenseDeclared"] == "Apache-2.0"
    assert found["six"]["licenseDeclared"] == "MIT"
    assert found["odd"]["licenseDeclared"] == "NOASSERTION"
    assert "Some Custom Licence" in found["odd"]["licenseComments"]
    image = next(p for p in doc["packages"] if p["SPDXID"] == "SPDXRef-image")
    digest = json.loads(pybuild("inspect", "pkgs:1").stdout)[0]["Descriptor"]["digest"]
    assert image["versionInfo"] == digest
    validate_spdx(doc, tmp_path)
    assert sbom(pybuild, "pkgs:1") == doc  # deterministic


def test_sbom_follows_layers_and_whiteouts(pybuild, busybox_rootfs, tmp_path):
    """A later layer's dpkg status replaces the earlier one; removed dist-info is gone."""
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    write_rootfs(rootfs)
    pybuild("import", str(rootfs), "pkgs:1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "status").write_text("Package: only-this\nStatus: install ok installed\nVersion: 7\nArchitecture: all\n")
    (ctx / "Dockerfile").write_text(
        "FROM pkgs:1\n"
        "COPY status /var/lib/dpkg/status\n"
        "RUN rm -rf /usr/lib/python3.11/site-packages/six-1.16.0.dist-info /lib/apk\n")
    pybuild("build", "-q", "-t", "pkgs:2", str(ctx))
    found = packages(sbom(pybuild, "pkgs:2"))
    assert sorted(found) == ["Requests_Toolbelt", "distroless-pkg", "odd", "only-this"]
    assert found["only-this"]["versionInfo"] == "7"


@pytest.mark.registry
def test_sbom_of_a_remote_image(plain_registry, pybuild, busybox_rootfs, tmp_path):
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    write_rootfs(rootfs)
    pybuild("import", str(rootfs), "pkgs:1")
    target = f"{plain_registry.host}/sbom/pkgs:1"
    pybuild("push", "-q", "pkgs:1", target)
    local = sbom(pybuild, "pkgs:1")
    remote = sbom(CLI(tmp_path / "empty-root"), target)
    assert packages(remote) == packages(local)


def test_sbom_of_host_dpkg_database_matches_dpkg_query(pybuild, busybox_rootfs, tmp_path):
    """This machine's own dpkg database (hundreds of real packages, epochs, multiarch) in an image:
    the SBOM lists exactly what dpkg-query reports as installed, with the same versions."""
    if not Path("/var/lib/dpkg/status").exists():
        pytest.skip("no dpkg database on this host")
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    (rootfs / "var/lib/dpkg").mkdir(parents=True)
    shutil.copy2("/var/lib/dpkg/status", rootfs / "var/lib/dpkg/status")
    pybuild("import", str(rootfs), "hostpkgs:1")
    doc = sbom(pybuild, "hostpkgs:1")
    listed = sorted((p["name"], p["versionInfo"], purl(p).split("arch=")[1]) for p in packages_list(doc))
    expected = dpkg_installed(["--admindir", str(rootfs / "var/lib/dpkg")])
    assert len(expected) > 50 and listed == expected
    validate_spdx(doc, tmp_path)


def packages_list(doc: dict) -> list[dict]:
    return [p for p in doc["packages"] if p["SPDXID"] != "SPDXRef-image"]


def dpkg_installed(prefix: list[str]) -> list[tuple[str, str, str]]:
    """``(package, version, arch)`` of what ``dpkg -l`` shows as ``ii``, from dpkg-query itself."""
    out = subprocess.run(["dpkg-query", *prefix, "-W", "-f", "${db:Status-Abbrev}|${Package}|${Version}|${Architecture}\n"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(tuple(line.split("|")[1:]) for line in out.splitlines() if line.startswith("ii"))


def test_hostile_package_metadata_is_bounded(pybuild, root, busybox_rootfs, tmp_path):
    """A METADATA file over the per-file cap is skipped (not read into memory); past the total
    budget the image is refused with one line."""
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    write_rootfs(rootfs)
    huge = rootfs / "usr/lib/python3.11/site-packages/huge-1.0.dist-info"
    huge.mkdir()
    with open(huge / "METADATA", "wb") as fh:
        fh.write(b"Metadata-Version: 2.1\nName: huge\nVersion: 1.0\n\n")
        fh.truncate(33 << 20)
    pybuild("import", str(rootfs), "hostile:1")
    assert "huge" not in packages(sbom(pybuild, "hostile:1"))

    from registry.errors import PybuildError
    from registry.image import StoreSource
    from registry.sbom.files import image_files
    from registry.sbom.packages import wanted
    from registry.store import Store

    store = Store(root)
    with pytest.raises(PybuildError, match="more than 0 MiB of package metadata"):
        image_files(StoreSource.named(store, "hostile:1"), wanted, max_total=1000)


def test_sbom_of_host_python_packages_matches_pip(pybuild, busybox_rootfs, tmp_path):
    """This machine's Debian-packaged Python distributions (dist-info and egg-info, files and dirs)
    in an image: the SBOM lists what ``pip list --path`` (an independent reader) lists."""
    import sys

    host = Path("/usr/lib/python3/dist-packages")
    entries = [p for p in host.iterdir() if p.name.endswith((".dist-info", ".egg-info"))] if host.is_dir() else []
    if not entries:
        pytest.skip("no Debian-packaged Python distributions on this host")
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    target = rootfs / "usr/lib/python3/dist-packages"
    target.mkdir(parents=True)
    for entry in entries:
        (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, target / entry.name)
    pybuild("import", str(rootfs), "hostpy:1")
    listed = sorted((p["name"].lower(), p["versionInfo"]) for p in packages_list(sbom(pybuild, "hostpy:1")))
    pip = subprocess.run([sys.executable, "-m", "pip", "list", "--path", str(target), "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    expected = sorted((d["name"].lower(), d["version"]) for d in json.loads(pip))
    assert len(expected) > 5 and listed == expected
