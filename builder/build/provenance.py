"""SLSA provenance (v1 predicate) of a build, and the attestations ``build --sbom/--provenance`` attach.

What the provenance says: the Dockerfile (path and sha256), the build args given with
``--build-arg`` (values of names that look like secrets replaced by ``<redacted>``), the
target, the ids of ``--secret`` mounts (never their sources or contents), the labels, and
every base image by the manifest digest the build used; who built it (builder id) and
when (start and end).  Secrets never enter an SBOM either: the SBOM lists packages only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import socket
import uuid
from typing import Any
from urllib.parse import quote

BUILD_TYPE = "https://pybuild.invalid/build/dockerfile/v1"
REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"(?i)(secret|token|passw|pwd|credential|private|api_?key|access_?key|auth|session|"
                          r"cookie|signing|_key$|^key$)")


def looks_secret(name: str) -> bool:
    """True for build-arg names that usually carry secrets (``NPM_TOKEN``, ``DB_PASSWORD``, ``AWS_ACCESS_KEY``)."""
    return bool(_SECRET_NAME.search(name))


def redact(args: dict[str, str | None]) -> dict[str, str]:
    return {k: (REDACTED if looks_secret(k) else (v or "")) for k, v in sorted(args.items())}


def predicate(*, dockerfile_path: str, dockerfile_text: str, build_args: dict[str, str | None], target: str | None,
              secret_ids: list[str], labels: dict[str, str], base_images: dict[str, str], started: float,
              finished: float, platform: str) -> dict[str, Any]:
    """The SLSA v1 provenance predicate of one build."""
    dockerfile_digest = hashlib.sha256(dockerfile_text.encode("utf-8", "surrogateescape")).hexdigest()
    external: dict[str, Any] = {
        "frontend": "dockerfile.v0",
        "dockerfile": {"path": dockerfile_path, "digest": {"sha256": dockerfile_digest}},
        "args": redact(build_args),
        "secrets": [{"id": sid} for sid in sorted(secret_ids)],
        "labels": dict(sorted(labels.items())),
        "platform": platform,
    }
    if target:
        external["target"] = target
    dependencies = [{"uri": f"pkg:docker/{quote(name, safe='/:.')}", "digest": {"sha256": digest.partition(":")[2]},
                     "annotations": {"role": "base-image"}}
                    for name, digest in sorted(base_images.items())]
    dependencies.append({"uri": f"file:{dockerfile_path}", "digest": {"sha256": dockerfile_digest},
                         "annotations": {"role": "dockerfile"}})
    return {
        "buildDefinition": {"buildType": BUILD_TYPE, "externalParameters": external,
                            "internalParameters": {"builder": "pybuild"}, "resolvedDependencies": dependencies},
        "runDetails": {"builder": {"id": builder_id()},
                       "metadata": {"invocationId": str(uuid.uuid4()), "startedOn": _time(started),
                                    "finishedOn": _time(finished)}},
    }


def builder_id() -> str:
    """``$PYBUILD_BUILDER_ID`` (a CI can name itself), else pybuild on this host."""
    from builder.cli import VERSION

    return os.environ.get("PYBUILD_BUILDER_ID") or f"https://pybuild.invalid/builder/{VERSION}@{socket.gethostname()}"


def _time(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
