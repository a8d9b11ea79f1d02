"""Registry credentials where docker keeps them: ``config.json`` and credential helpers.

Lookup order for a registry (as docker): ``credHelpers[registry]``, then
``credsStore``, then ``auths[registry]`` (``auth`` = base64 ``user:password``, or
``username``/``password``, or ``identitytoken``).  Docker Hub's key is
``https://index.docker.io/v1/``.  ``pybuild login`` writes through the configured
helper, or into ``auths`` with file mode 0600.  Secrets never reach ``repr()``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PybuildError
from ..reference import DEFAULT_REGISTRY

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_TOKEN_USER = "<token>"


class CredentialsError(PybuildError):
    """config.json or a credential helper could not be used."""


@dataclass(frozen=True)
class Credentials:
    """A user name with a password or an identity (refresh) token."""

    username: str
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


def config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(base) / "config.json"


def registry_key(registry: str) -> str:
    """The key docker uses for a registry in ``auths`` and for helpers."""
    return DOCKER_HUB_KEY if registry == DEFAULT_REGISTRY else registry


def _load_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise CredentialsError(f"cannot read {path}: {err.__class__.__name__}; fix or remove the file") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{path} is not a JSON object; fix or remove the file")
    for key, kind in (("auths", dict), ("credHelpers", dict), ("credsStore", str)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise CredentialsError(f"{key!r} in {path} is not a JSON {'object' if kind is dict else 'string'}; "
                                   "fix or remove the file")
    return data


def _matching_auth(auths: dict[str, Any], registry: str) -> dict[str, Any] | None:
    key = registry_key(registry)
    if key in auths:
        return auths[key]
    for name, entry in auths.items():
        bare = name.split("://", 1)[-1].split("/", 1)[0]
        if bare == registry or (registry == DEFAULT_REGISTRY and bare in ("index.docker.io", "registry-1.docker.io")):
            return entry
    return None


def _helper_for(config: dict[str, Any], registry: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    return helpers.get(registry_key(registry)) or helpers.get(registry) or config.get("credsStore") or None


def _run_helper(helper: str, action: str, payload: str) -> str:
    program = f"docker-credential-{helper}"
    if shutil.which(program) is None:
        raise CredentialsError(f"credential helper {program} is not on PATH (configured in {config_path()})")
    proc = subprocess.run([program, action], input=payload.encode(), capture_output=True, timeout=60)
    if proc.returncode != 0:
        if action == "get" and b"credentials not found" in proc.stdout + proc.stderr:
            return ""
        raise CredentialsError(f"credential helper {program} {action} failed (exit {proc.returncode})")
    return proc.stdout.decode()


def load(registry: str) -> Credentials | None:
    """The stored credentials for ``registry``, or ``None``."""
    config = _load_config(config_path())
    helper = _helper_for(config, registry)
    if helper:
        out = _run_helper(helper, "get", registry_key(registry))
        if out.strip():
            try:
                got = json.loads(out)
                user, secret = got.get("Username", ""), got.get("Secret", "")
            except (ValueError, AttributeError):
                raise CredentialsError(f"credential helper docker-credential-{helper} gave a malformed answer") from None
            if user == _TOKEN_USER:
                return Credentials(username="", identity_token=secret)
            return Credentials(username=user, password=secret)
    entry = _matching_auth(config.get("auths") or {}, registry)
    if not entry:
        return None
    return _from_auth_entry(entry, registry)


def _from_auth_entry(entry: dict[str, Any], registry: str) -> Credentials | None:
    fields = ("auth", "username", "password", "identitytoken")
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k) or "", str) for k in fields):
        raise CredentialsError(f"the auth entry for {registry} in {config_path()} is not an object of strings; "
                               "fix or remove it")
    username, password = entry.get("username", ""), entry.get("password", "")
    if entry.get("auth"):
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError:  # bad base64 (binascii.Error), UnicodeDecodeError, or non-ASCII text
            raise CredentialsError(f"the auth entry for {registry} in {config_path()} is not valid base64") from None
    token = entry.get("identitytoken", "")
    if not (username or password or token):
        return None
    return Credentials(username=username, password="" if token else password, identity_token=token)


def store(registry: str, creds: Credentials) -> Path:
    """Save credentials for ``registry`` (helper if configured, else config.json with mode 0600)."""
    path = config_path()
    config = _load_config(path)
    helper = _helper_for(config, registry)
    if helper:
        user, secret = (_TOKEN_USER, creds.identity_token) if creds.identity_token else (creds.username, creds.password)
        _run_helper(helper, "store", json.dumps({"ServerURL": registry_key(registry), "Username": user, "Secret": secret}))
        return path
    entry: dict[str, Any] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    if creds.identity_token:
        entry = {"auth": base64.b64encode(f"{creds.username}:".encode()).decode(), "identitytoken": creds.identity_token}
    config.setdefault("auths", {})[registry_key(registry)] = entry
    _write_private(path, config)
    return path


def erase(registry: str) -> bool:
    """Forget credentials for ``registry``; return whether any were stored."""
    path = config_path()
    config = _load_config(path)
    helper = _helper_for(config, registry)
    found = False
    if helper:
        found = bool(_run_helper(helper, "get", registry_key(registry)).strip())
        if found:
            _run_helper(helper, "erase", registry_key(registry))
    auths = config.get("auths") or {}
    for key in [k for k in auths if k == registry_key(registry) or k.split("://", 1)[-1].split("/", 1)[0] == registry]:
        del auths[key]
        found = True
    if found and path.exists():
        _write_private(path, config)
    return found


def _write_private(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".config.json.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
