"""Published ports: docker's ``-p [IP:][HOST:]CONTAINER[/tcp|udp]`` (ranges too) and ``-P``.

Each mapping becomes one entry of the ``portmap`` plugin's ``portMappings``
(``hostPort``, ``containerPort``, ``protocol``, ``hostIP``).  A host port left out is
picked the way docker's allocator ends up doing it: a free ephemeral port of the host.
"""

from __future__ import annotations

import socket

from ..errors import RunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _range(text: str, spec: str) -> list[int]:
    first, _, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise RunError(f"invalid port {text!r} in -p {spec}: use a number or a range such as 8000-8010") from None
    if not (0 < low <= high <= 65535):
        raise RunError(f"invalid port range {text!r} in -p {spec}: ports are 1-65535, low-high")
    return list(range(low, high + 1))


def free_port(host_ip: str, protocol: str) -> int:
    """A port nothing on this host listens on now (the kernel's choice)."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host_ip or "0.0.0.0", 0))
        return sock.getsockname()[1]


def parse(spec: str) -> list[dict[str, Any]]:
    """One ``-p`` value as portmap entries (host port 0: to be picked at start)."""
    body, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp"):
        raise RunError(f"invalid protocol {protocol!r} in -p {spec}: use tcp or udp")
    parts = body.rsplit(":", 2)
    host_ip, host = "", ""
    if len(parts) == 3:
        host_ip, host, container = parts
    elif len(parts) == 2:
        host, container = parts
    else:
        container = parts[0]
    if host_ip:
        try:
            socket.inet_aton(host_ip)
        except OSError:
            raise RunError(f"invalid IP address {host_ip!r} in -p {spec}") from None
    cports = _range(container, spec)
    hports = _range(host, spec) if host else [0] * len(cports)
    if len(hports) != len(cports):
        raise RunError(f"invalid -p {spec}: the host and container port ranges differ in length")
    return [{"hostPort": h, "containerPort": c, "protocol": protocol, "hostIP": host_ip}
            for h, c in zip(hports, cports)]


def exposed(image_ports: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``-P``: every ``EXPOSE``d port of the image, to a host port picked at start."""
    found = []
    for key in sorted(image_ports or {}):
        number, _, protocol = key.partition("/")
        found.extend(parse(f"{number}/{protocol or 'tcp'}"))
    return found


def assign(mappings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The mappings with every host port 0 replaced by a free port."""
    return [dict(m, hostPort=m["hostPort"] or free_port(m["hostIP"], m["protocol"])) for m in mappings]


def describe(mappings: list[dict[str, Any]]) -> list[str]:
    """``pybuild port`` lines, as docker prints them: ``80/tcp -> 127.0.0.1:18080``."""
    return [f"{m['containerPort']}/{m['protocol']} -> {m['hostIP'] or '0.0.0.0'}:{m['hostPort']}" for m in mappings]
