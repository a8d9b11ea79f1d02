"""Packages an image records: dpkg's status database, apk's installed database, Python dist-info.

Each reader takes the files :func:`registry.sbom.files.image_files` collected and returns
:class:`Package` records with name, version, architecture and, where the image records
one, a licence (Debian's machine-readable ``/usr/share/doc/PKG/copyright``, apk's ``L:``,
a wheel's ``License-Expression``/``License``/classifiers).  Licences are kept as SPDX
expressions only when every identifier in them is a known SPDX identifier (Debian's
short names are translated); otherwise the declared text goes into a comment.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import quote

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
APK_INSTALLED = "lib/apk/db/installed"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
# wheels install X.dist-info/METADATA; setuptools (and many Debian packages) X.egg-info/PKG-INFO
# or a single X.egg-info file; only those under a site-packages or dist-packages directory count
_DIST_INFO = re.compile(r"(^|/)(site|dist)-packages/[^/]+(\.dist-info/METADATA|\.egg-info/PKG-INFO|\.egg-info)$")
_COPYRIGHT = re.compile(r"^usr/share/doc/([^/]+)/copyright$")

# SPDX identifiers common in distributions and on PyPI (a subset of the SPDX licence list).
SPDX_IDS = {
    "0BSD", "AFL-2.1", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1", "Apache-2.0", "Artistic-1.0",
    "Artistic-1.0-Perl", "Artistic-2.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-3-Clause", "BSD-4-Clause",
    "BSL-1.0", "bzip2-1.0.6", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0",
    "curl", "EPL-1.0", "EPL-2.0", "GFDL-1.2-or-later", "GFDL-1.3-or-later", "GPL-1.0-or-later",
    "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "HPND", "ISC",
    "LGPL-2.0-only", "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only",
    "LGPL-3.0-or-later", "Libpng", "MIT", "MIT-0", "MPL-1.1", "MPL-2.0", "OpenSSL", "PSF-2.0",
    "Python-2.0", "Unicode-DFS-2016", "Unlicense", "W3C", "X11", "Zlib", "ZPL-2.1",
}
SPDX_EXCEPTIONS = {"GCC-exception-3.1", "Autoconf-exception-3.0", "Classpath-exception-2.0", "LLVM-exception",
                   "OpenSSL-exception"}
# Debian copyright-format short names (and common spellings) → SPDX.
_ALIASES = {
    "GPL-2": "GPL-2.0-only", "GPL-2+": "GPL-2.0-or-later", "GPL-3": "GPL-3.0-only", "GPL-3+": "GPL-3.0-or-later",
    "GPL-1+": "GPL-1.0-or-later", "LGPL-2": "LGPL-2.0-only", "LGPL-2+": "LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only", "LGPL-2.1+": "LGPL-2.1-or-later", "LGPL-3": "LGPL-3.0-only",
    "LGPL-3+": "LGPL-3.0-or-later", "AGPL-3": "AGPL-3.0-only", "AGPL-3+": "AGPL-3.0-or-later",
    "Apache-2": "Apache-2.0", "Expat": "MIT", "BSD-3-clause": "BSD-3-Clause", "BSD-2-clause": "BSD-2-Clause",
    "BSD-4-clause": "BSD-4-Clause", "public-domain": "", "GFDL-1.3+": "GFDL-1.3-or-later",
    "GFDL-1.2+": "GFDL-1.2-or-later", "zlib": "Zlib", "MPL-2": "MPL-2.0", "PSF": "PSF-2.0",
    "Artistic": "Artistic-1.0-Perl", "GPL-2.0": "GPL-2.0-only", "GPL-3.0": "GPL-3.0-only",
}
_CLASSIFIER = {"MIT License": "MIT", "Apache Software License": "Apache-2.0", "BSD License": "",
               "Python Software Foundation License": "PSF-2.0", "ISC License (ISCL)": "ISC",
               "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0"}


@dataclass
class Package:
    """One installed package as an SBOM lists it."""

    kind: str  # deb, apk, python
    name: str
    version: str
    arch: str = ""
    license: str | None = None  # an SPDX expression, or None (NOASSERTION)
    declared: str = ""  # the licence as the image records it, when it is not SPDX
    supplier: str = ""
    homepage: str = ""
    location: str = ""  # the file that records it
    namespace: str = ""  # deb: the distribution (debian, ubuntu); apk: alpine

    @property
    def purl(self) -> str:
        version = quote(self.version, safe="")
        if self.kind == "python":
            return f"pkg:pypi/{_pypi_name(self.name)}@{version}"
        qualifiers = f"?arch={quote(self.arch, safe='')}" if self.arch else ""
        return f"pkg:{self.kind}/{self.namespace or self.kind}/{quote(self.name, safe='')}@{version}{qualifiers}"


def wanted(path: str) -> bool:
    """The files whose content the package readers need."""
    return (path == DPKG_STATUS or path.startswith(DPKG_STATUS_D) or path == APK_INSTALLED
            or path in OS_RELEASE or bool(_DIST_INFO.search(path)) or bool(_COPYRIGHT.match(path)))


def read_packages(files: dict[str, bytes]) -> list[Package]:
    """Every package the collected files record, sorted by kind and name."""
    distro = os_release(files).get("ID", "")
    out = dpkg_packages(files, distro or "debian") + apk_packages(files) + python_packages(files)
    return sorted(out, key=lambda p: (p.kind, p.name, p.version, p.arch, p.location))


def os_release(files: dict[str, bytes]) -> dict[str, str]:
    for path in OS_RELEASE:
        if path in files:
            out = {}
            for line in files[path].decode("utf-8", "replace").splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() and not key.startswith("#"):
                    out[key.strip()] = value.strip().strip('"').strip("'")
            return out
    return {}


# ---- dpkg --------------------------------------------------------------------------------

def dpkg_packages(files: dict[str, bytes], distro: str) -> list[Package]:
    """Packages dpkg records as installed (``Status: … installed``), as ``dpkg -l`` shows ``ii``;
    distroless images keep one stanza per file in ``status.d`` instead."""
    stanzas: list[tuple[str, dict[str, str]]] = []
    if DPKG_STATUS in files:
        stanzas += [(DPKG_STATUS, s) for s in _stanzas(files[DPKG_STATUS])]
    for path in sorted(p for p in files if p.startswith(DPKG_STATUS_D) and "." not in posixpath.basename(p)):
        stanzas += [(path, s) for s in _stanzas(files[path])]
    out = []
    for location, fields in stanzas:
        status = fields.get("Status", "install ok installed").split()
        if not fields.get("Package") or status[-1:] != ["installed"]:
            continue
        name = fields["Package"]
        license_, declared = _spdx(_debian_license(files.get(f"usr/share/doc/{name}/copyright")))
        out.append(Package("deb", name, fields.get("Version", ""), fields.get("Architecture", ""), license_,
                           declared, fields.get("Maintainer", ""), fields.get("Homepage", ""), location, distro))
    return out


def _stanzas(data: bytes) -> list[dict[str, str]]:
    """RFC 822-style paragraphs (dpkg's and Debian copyright files'); continuation lines folded."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key: str | None = None
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            current[key] = value.strip()
    if current:
        out.append(current)
    return out


def _debian_license(copyright_: bytes | None) -> str:
    """The licence of ``Files: *`` in a machine-readable copyright file ('' when not recorded)."""
    if not copyright_ or not copyright_.startswith(b"Format:"):
        return ""
    for stanza in _stanzas(copyright_):
        if stanza.get("Files", "").split()[:1] == ["*"] and stanza.get("License"):
            return stanza["License"].split("\n")[0].strip()
    return ""


# ---- apk ---------------------------------------------------------------------------------

def apk_packages(files: dict[str, bytes]) -> list[Package]:
    """apk's ``lib/apk/db/installed``: ``P:`` name, ``V:`` version, ``A:`` arch, ``L:`` licence."""
    if APK_INSTALLED not in files:
        return []
    out = []
    for block in files[APK_INSTALLED].decode("utf-8", "replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) > 2 and line[1] == ":" and line[0] not in fields:
                fields[line[0]] = line[2:]
        if fields.get("P"):
            license_, declared = _spdx(fields.get("L", ""))
            out.append(Package("apk", fields["P"], fields.get("V", ""), fields.get("A", ""), license_, declared,
                               fields.get("m", ""), fields.get("U", ""), APK_INSTALLED, "alpine"))
    return out


# ---- Python --------------------------------------------------------------------------------

def python_packages(files: dict[str, bytes]) -> list[Package]:
    """Installed distributions (``*.dist-info/METADATA``, ``*.egg-info``), in any site- or dist-packages.

    A distribution recorded twice in one directory (a stale egg-info beside a dist-info) is
    listed once, from its dist-info, as Python's importlib and pip see it.
    """
    found: dict[tuple[str, str], Package] = {}
    # dist-info first, so it wins over an egg-info of the same name in the same directory
    for path in sorted((p for p in files if _DIST_INFO.search(p)), key=lambda p: (".egg-info" in p, p)):
        headers = _stanzas(files[path].split(b"\n\n", 1)[0])
        fields = headers[0] if headers else {}
        if not fields.get("Name"):
            continue
        raw = fields.get("License-Expression") or _classifier_license(files[path]) or fields.get("License", "")
        license_, declared = _spdx(raw.split("\n")[0] if len(raw) < 200 else "")
        match = _DIST_INFO.search(path)
        assert match is not None  # the path was chosen by this pattern
        site = path[:match.end(2)]
        found.setdefault((site, _pypi_name(fields["Name"])), Package(
            "python", fields["Name"], fields.get("Version", ""), "", license_, declared,
            fields.get("Author-email") or fields.get("Author", ""), fields.get("Home-page", ""), path))
    return list(found.values())


def _classifier_license(metadata: bytes) -> str:
    for line in metadata.decode("utf-8", "replace").splitlines():
        if line.startswith("Classifier: License :: OSI Approved :: "):
            return _CLASSIFIER.get(line.rsplit(" :: ", 1)[1], "")
    return ""


def _pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---- licences ----------------------------------------------------------------------------

def _spdx(text: str) -> tuple[str | None, str]:
    """``(SPDX expression or None, the declared text when it could not be translated)``."""
    text = text.strip()
    if not text:
        return None, ""
    tokens = re.findall(r"\(|\)|[^\s()]+", text.replace(",", " "))
    out, expect_exception = [], False
    for token in tokens:
        upper = token.upper()
        if token in "()":
            out.append(token)
        elif upper in ("AND", "OR", "WITH") or token in ("|", "&"):
            op = {"|": "OR", "&": "AND"}.get(token, upper)
            out.append(op)
            expect_exception = op == "WITH"
        elif expect_exception:
            if token not in SPDX_EXCEPTIONS:
                return None, text
            out.append(token)
            expect_exception = False
        else:
            ident = _ALIASES.get(token, token)
            if ident not in SPDX_IDS:
                return None, text
            out.append(ident)
    expression = " ".join(out).replace("( ", "(").replace(" )", ")")
    return (expression, "") if out and out[-1] not in ("AND", "OR", "WITH") else (None, text)
