"""Platforms (``os/arch[/variant]``): parsing with containerd's normalisation, matching, selection.

One place for what docker and BuildKit mean by a platform: ``aarch64`` is ``arm64``,
``armhf`` is ``arm/v7``, a bare ``arm`` is ``arm/v7``, and ``arm64`` equals
``arm64/v8``.  Index entries are matched with the same rules, so ``--platform
linux/arm64`` finds an entry that says ``variant: v8`` and one that says nothing.
"""

from __future__ import annotations

import os

from .errors import ImageNotFound, PybuildError

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "i386": "386", "i686": "386", "386": "386",
    "armhf": "arm", "armel": "arm", "armv7l": "arm", "arm": "arm",
}
_DEFAULT_VARIANT = {"armhf": "v7", "armel": "v6", "armv7l": "v7", "arm": "v7"}
# the qemu-user name of an architecture (the binfmt_misc handler is qemu-<name>)
QEMU_NAMES = {
    "amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le",
    "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64", "mips": "mips", "mipsle": "mipsel",
    "mips64": "mips64", "mips64le": "mips64el", "loong64": "loongarch64",
}


class Platform:
    """A normalised platform; ``variant`` is ``""`` when there is none."""

    __slots__ = ("os", "architecture", "variant")

    def __init__(self, os_name: str, architecture: str, variant: str = ""):
        self.os = os_name
        self.architecture = architecture
        self.variant = variant

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def __repr__(self) -> str:
        return f"Platform({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Platform) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def to_json(self) -> dict[str, str]:
        """The ``platform`` object of an index entry (also the config's fields)."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def matches(self, other: dict | None) -> bool:
        """True when an index entry's ``platform`` (or a config) names this platform."""
        if not isinstance(other, dict) or not other.get("os") or not other.get("architecture"):
            return False  # an index from anywhere may say anything here
        try:
            theirs = normalize(str(other["os"]), str(other["architecture"]), str(other.get("variant") or ""))
        except PybuildError:
            return False
        return theirs == self

    @property
    def build_args(self) -> dict[str, str]:
        """BuildKit's ``*PLATFORM``, ``*OS``, ``*ARCH``, ``*VARIANT`` values (without the prefix)."""
        return {"PLATFORM": str(self), "OS": self.os, "ARCH": self.architecture, "VARIANT": self.variant}


def normalize(os_name: str, arch: str, variant: str = "") -> Platform:
    """containerd's normalisation of one platform's parts."""
    os_name = os_name.lower()
    arch = arch.lower()
    variant = variant.lower()
    if not os_name or not arch:
        raise PybuildError(f"invalid platform {os_name}/{arch}: expected os/arch[/variant], e.g. linux/amd64")
    if os_name == "macos":
        os_name = "darwin"
    canonical = _ARCH_ALIASES.get(arch, arch)
    if canonical == "arm":
        variant = variant or _DEFAULT_VARIANT.get(arch, "v7")
        if variant.isdigit():
            variant = "v" + variant
    elif canonical == "arm64":
        if variant in ("8", "v8", "v8.0"):
            variant = ""
    elif canonical == "amd64":
        if variant == "v1":
            variant = ""
    return Platform(os_name, canonical, variant)


def parse(text: str) -> Platform:
    """``os/arch[/variant]`` (or a bare arch, taken as linux) as a :class:`Platform`."""
    parts = text.strip().split("/")
    if len(parts) == 1 and parts[0] and parts[0].lower() != "linux":
        parts = ["linux", parts[0]]
    if len(parts) not in (2, 3) or not all(parts):
        raise PybuildError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/amd64")
    return normalize(*parts)


def parse_list(text: str) -> list[Platform]:
    """A comma-separated ``--platform`` value, duplicates dropped, order kept."""
    out: list[Platform] = []
    for item in text.split(","):
        if not item.strip():
            raise PybuildError(f"invalid --platform {text!r}: an empty entry in the list")
        platform = parse(item)
        if platform not in out:
            out.append(platform)
    return out


def of_config(config: dict) -> Platform | None:
    """The platform an image config names (None when it names none)."""
    if not config.get("architecture"):
        return None
    try:
        return normalize(str(config.get("os") or "linux"), str(config["architecture"]), str(config.get("variant") or ""))
    except PybuildError:
        return None


def host() -> Platform:
    """The platform of this machine."""
    machine = os.uname().machine
    return normalize("linux", machine)


def native(platform: Platform) -> bool:
    """True when this host runs ``platform``'s binaries without emulation."""
    here = host()
    if platform.os != here.os:
        return False
    runs = {here.architecture}
    if here.architecture == "amd64":
        runs.add("386")
    return platform.architecture in runs


def select(index: dict, platform: Platform | str | None = None) -> dict:
    """The index entry for ``platform`` (default: the host's)."""
    wanted = parse(platform) if isinstance(platform, str) else (platform or host())
    entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)]
    for entry in entries:
        if wanted.matches(entry.get("platform")):
            return entry
    available = ", ".join(describe(e.get("platform")) for e in entries) or "none"
    raise ImageNotFound(f"no manifest for platform {wanted} (available: {available})")


def select_descriptor(index: dict, platform: Platform | str | None = None):  # -> oci.Descriptor
    """:func:`select` as an ``oci.Descriptor`` (what the store, archives and registries fetch next).

    ``oci`` is imported here, not at the top: ``pybuild run`` imports this module and must stay light.
    """
    from .oci import Descriptor

    return Descriptor.from_json(select(index, platform))


def describe(platform: dict | None) -> str:
    """An index entry's platform as ``os/arch[/variant]`` (``unknown`` when it has none)."""
    if not isinstance(platform, dict) or not platform:
        return "unknown"
    return "/".join(str(platform.get(k)) for k in ("os", "architecture", "variant") if platform.get(k))
