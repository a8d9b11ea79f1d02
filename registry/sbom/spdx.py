"""An SPDX 2.3 JSON document for an image and the packages in it.

Deterministic for a given image: the creation time is the image's ``created`` (else the
Unix epoch), the namespace is derived from the manifest digest, identifiers from the
package coordinates; so the same image always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .packages import Package

TOOL = "Tool: pybuild-0.1.0"
NOASSERTION = "NOASSERTION"


def document(image_name: str, digest: str, created: str, packages: list[Package],
             os_info: dict[str, str] | None = None) -> dict[str, Any]:
    """The SPDX document: the image as the described package, CONTAINS each package."""
    image_id = "SPDXRef-image"
    image_pkg = {
        "SPDXID": image_id, "name": image_name, "versionInfo": digest, "downloadLocation": NOASSERTION,
        "filesAnalyzed": False, "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION, "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": digest.partition(":")[2]}],
    }
    if os_info and os_info.get("PRETTY_NAME"):
        image_pkg["comment"] = f"operating system: {os_info['PRETTY_NAME']}"
    entries, relationships = [image_pkg], [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}]
    seen: set[str] = set()
    for pkg in packages:
        spdx_id = _spdx_id(pkg, seen)
        entry: dict[str, Any] = {
            "SPDXID": spdx_id, "name": pkg.name, "versionInfo": pkg.version or NOASSERTION,
            "downloadLocation": NOASSERTION, "filesAnalyzed": False,
            "licenseConcluded": NOASSERTION, "licenseDeclared": pkg.license or NOASSERTION,
            "copyrightText": NOASSERTION, "primaryPackagePurpose": "LIBRARY" if pkg.kind == "python" else "APPLICATION",
            "sourceInfo": f"recorded in /{pkg.location}",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": pkg.purl}],
        }
        if pkg.supplier:
            entry["supplier"] = _supplier(pkg.supplier)
        if pkg.homepage.startswith(("http://", "https://")):
            entry["homepage"] = pkg.homepage
        if pkg.declared:
            entry["licenseComments"] = f"declared by the package as: {pkg.declared}"
        entries.append(entry)
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": spdx_id})
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"sbom-{image_name}",
        "documentNamespace": f"https://pybuild.invalid/spdx/{digest.replace(':', '-')}",
        "creationInfo": {"created": created or "1970-01-01T00:00:00Z", "creators": [TOOL]},
        "documentDescribes": [image_id],
        "packages": entries, "relationships": relationships,
    }


def _spdx_id(pkg: Package, seen: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{pkg.kind}-{pkg.name}-{pkg.version}-{pkg.arch}").strip("-")
    spdx_id = f"SPDXRef-{base}"
    if spdx_id in seen:
        spdx_id += "-" + hashlib.sha256(pkg.location.encode()).hexdigest()[:12]
    seen.add(spdx_id)
    return spdx_id


def _supplier(text: str) -> str:
    """SPDX wants ``Organization: name (email)`` or ``Person: …``; maintainers are written as people."""
    return "Person: " + " ".join(text.split())
