"""containers' ``policy.json``: which images ``pull`` (and ``run``'s implicit pull) accepts.

The file skopeo and podman read (containers-policy.json(5)).  For an image at
``host/a/b:tag`` the requirements are those of the most specific scope of the
``docker`` transport: ``host/a/b:tag`` (or ``@digest``), ``host/a/b``, ``host/a``,
``host``, then ``*.domain`` wildcards of the host, then the transport's ``""``
entry, then ``default``.  Every requirement of that list must accept.

Requirements: ``insecureAcceptAnything``, ``reject`` and ``sigstoreSigned`` with
``keyPath`` or ``keyData`` and an optional ``signedIdentity`` (``matchExact``,
``matchRepoDigestOrExact`` (the default), ``matchRepository``, ``exactReference``,
``exactRepository``, ``remapIdentity``).  GPG ``signedBy``, Fulcio certificates and
Rekor are not supported: a scope that needs them rejects, saying so, while other
scopes of the same file still work.

Where the file comes from: ``--policy``, else ``$PYBUILD_POLICY``, else
``$XDG_CONFIG_HOME/containers/policy.json`` (as containers/image looks), else
``/etc/containers/policy.json``; with none of them, everything is accepted, as docker
does.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InvalidReference
from ..reference import Reference, parse
from . import keys
from .cosign import Signature
from .errors import KeyFileError, PolicyInvalid, PolicyRejected, VerificationFailed
from .verify import IdentityRule, check

SYSTEM_POLICY = "/etc/containers/policy.json"
ENV_POLICY = "PYBUILD_POLICY"
_IDENTITY_FIELDS = {"matchExact": set(), "matchRepoDigestOrExact": set(), "matchRepository": set(),
                    "exactReference": {"dockerReference"}, "exactRepository": {"dockerRepository"},
                    "remapIdentity": {"prefix", "signedPrefix"}}


def default_path() -> str | None:
    """The policy file in effect when none is named on the command line (None: accept all)."""
    if os.environ.get(ENV_POLICY):
        return os.environ[ENV_POLICY]
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    for candidate in (os.path.join(config, "containers", "policy.json"), SYSTEM_POLICY):
        if os.path.isfile(candidate):
            return candidate
    return None


@dataclass
class Scope:
    """The requirements that apply to one image, and the scope they came from (for messages)."""

    name: str
    requirements: list[dict[str, Any]]

    @property
    def accepts_anything(self) -> bool:
        return all(r.get("type") == "insecureAcceptAnything" for r in self.requirements)


class Policy:
    """A parsed ``policy.json``; :meth:`check` is the verdict on one image."""

    def __init__(self, doc: Any, path: str):
        self.path = path
        if not isinstance(doc, dict) or not isinstance(doc.get("default"), list) or not doc["default"]:
            raise PolicyInvalid(f"{path}: a policy needs a non-empty \"default\" list of requirements")
        transports = doc.get("transports") or {}
        docker = transports.get("docker") if isinstance(transports, dict) else None
        if docker is not None and not isinstance(docker, dict):
            raise PolicyInvalid(f"{path}: transports.docker must be an object of scopes")
        self.default: list[dict[str, Any]] = doc["default"]
        self.docker: dict[str, list[dict[str, Any]]] = docker or {}
        for scope, requirements in [("default", self.default), *self.docker.items()]:
            if not isinstance(requirements, list) or not requirements or not all(isinstance(r, dict) and "type" in r
                                                                                    for r in requirements):
                raise PolicyInvalid(f"{path}: scope {scope!r} must be a non-empty list of requirements with a type")

    @classmethod
    def load(cls, path: str) -> "Policy":
        try:
            with open(path, "rb") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            raise PolicyInvalid(f"policy file {path} does not exist") from None
        except (OSError, ValueError) as err:
            raise PolicyInvalid(f"cannot read policy file {path}: {err}") from None
        return cls(doc, path)

    def scope_for(self, ref: Reference) -> Scope:
        """The most specific scope that names ``ref``."""
        for name in _scope_names(ref):
            if name in self.docker:
                return Scope(f"docker:{name}" if name else "docker (transport default)", self.docker[name])
        return Scope("default", self.default)

    def check(self, ref: Reference, image: Callable[[], tuple[str, Sequence[Signature]]]) -> Scope:
        """Accept ``ref`` or raise :class:`PolicyRejected` saying why.

        ``image()`` gives the digest ``ref`` resolves to and its signatures; it is called
        (once) only when a requirement needs them, so a ``reject`` scope refuses before
        the registry is asked anything.
        """
        scope = self.scope_for(ref)
        fetched: list[tuple[str, Sequence[Signature]]] = []

        def get() -> tuple[str, Sequence[Signature]]:
            if not fetched:
                fetched.append(image())
            return fetched[0]

        for requirement in sorted(scope.requirements, key=lambda r: r.get("type") == "sigstoreSigned"):
            why = self._why_not(requirement, ref, get)
            if why:
                raise PolicyRejected(f"policy {self.path} rejects {ref} (scope {scope.name}): {why}")
        return scope

    def _why_not(self, requirement: dict[str, Any], ref: Reference,
                 image: Callable[[], tuple[str, Sequence[Signature]]]) -> str | None:
        kind = requirement.get("type")
        if kind == "insecureAcceptAnything":
            return None
        if kind == "reject":
            return "the policy rejects every image in this scope"
        if kind == "signedBy":
            return "it requires a GPG signature (signedBy), which pybuild does not verify; use sigstoreSigned"
        if kind != "sigstoreSigned":
            return f"unknown requirement type {kind!r}"
        for unsupported in ("fulcio", "rekorPublicKeyPath", "rekorPublicKeyData"):
            if unsupported in requirement:
                return f"sigstoreSigned with {unsupported} is not supported by pybuild; use keyPath or keyData"
        try:
            key, key_name = self._key(requirement)
            identity = identity_rule(requirement.get("signedIdentity"))
            digest, signatures = image()
            check(signatures, ref, digest, key, identity, key_name)
        except (VerificationFailed, KeyFileError, PolicyInvalid) as err:
            return str(err)
        return None

    def _key(self, requirement: dict[str, Any]) -> tuple[keys.PublicKey, str]:
        has_path, has_data = "keyPath" in requirement, "keyData" in requirement
        if has_path == has_data:
            raise PolicyInvalid(f"{self.path}: sigstoreSigned needs exactly one of keyPath and keyData")
        if has_data:
            try:
                data = base64.b64decode(requirement["keyData"], validate=True)
            except (ValueError, TypeError):
                raise PolicyInvalid(f"{self.path}: keyData is not base64") from None
            return keys.load_public(data, "the policy's keyData"), "the policy's keyData"
        path = Path(requirement["keyPath"])
        if not path.is_absolute():
            path = Path(self.path).parent / path
        return keys.load_public_file(str(path)), str(path)


def load(path: str | None) -> Policy | None:
    """The policy at ``path``, or the default one (None when there is none)."""
    path = path or default_path()
    return Policy.load(path) if path else None


def identity_rule(spec: dict[str, Any] | None) -> IdentityRule:
    """The ``signedIdentity`` rule as a function (default ``matchRepoDigestOrExact``)."""
    spec = spec or {"type": "matchRepoDigestOrExact"}
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind not in _IDENTITY_FIELDS or set(spec) - {"type"} != _IDENTITY_FIELDS[kind]:
        raise PolicyInvalid(f"invalid signedIdentity {spec!r}")
    if kind == "matchExact":
        return _match_exact
    if kind == "matchRepoDigestOrExact":
        return _match_repo_digest_or_exact
    if kind == "matchRepository":
        return lambda image, signed: None if image.name == signed.name else \
            f"signed for {signed.name}, not {image.name}"
    if kind == "exactReference":
        wanted = _parse_full(spec["dockerReference"])
        return lambda image, signed: _match_exact(wanted, signed)
    if kind == "exactRepository":
        wanted_repo = _parse_full(spec["dockerRepository"], name_only=True).name
        return lambda image, signed: None if signed.name == wanted_repo else \
            f"signed for {signed.name}, not {wanted_repo}"
    prefix, signed_prefix = spec["prefix"], spec["signedPrefix"]

    def remap(image: Reference, signed: Reference) -> str | None:
        text = str(image)
        if _has_prefix(image.name, prefix):
            image = parse(signed_prefix + text[len(prefix):], default_tag=False)
        return _match_repo_digest_or_exact(image, signed)

    return remap


def _match_exact(image: Reference, signed: Reference) -> str | None:
    if not (signed.tag or signed.digest):
        return f"the signature names only the repository {signed.name}, and this scope needs an exact match " \
               f"(use signedIdentity matchRepository for cosign's signatures)"
    return None if image == signed else f"signed for {signed}, not {image}"


def _match_repo_digest_or_exact(image: Reference, signed: Reference) -> str | None:
    if image.digest and not image.tag:
        return None if image.name == signed.name else f"signed for {signed.name}, not {image.name}"
    return _match_exact(image, signed)


def _has_prefix(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix.rstrip("/") + "/")


def _parse_full(text: str, name_only: bool = False) -> Reference:
    try:
        ref = parse(text, default_tag=False)
    except InvalidReference as err:
        raise PolicyInvalid(f"signedIdentity: {err}") from None
    if name_only and (ref.tag or ref.digest):
        raise PolicyInvalid(f"signedIdentity: {text!r} must be a repository without tag or digest")
    return ref


def _scope_names(ref: Reference) -> list[str]:
    """Scopes from the most specific to the least, ending with the transport default ``""``."""
    names = [str(ref)] if ref.tag or ref.digest else []
    if ref.tag and ref.digest:
        names = [f"{ref.name}:{ref.tag}@{ref.digest}", f"{ref.name}@{ref.digest}", f"{ref.name}:{ref.tag}"]
    parts = ref.name.split("/")
    names += ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    host_labels = ref.registry.split(":")[0].split(".")
    names += ["*." + ".".join(host_labels[i:]) for i in range(1, len(host_labels))]
    return names + [""]
