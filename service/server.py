"""The listening socket, the request loop and the routing table.

A threading server from the standard library: each connection has its own thread, so a
``logs -f`` or an attach that lasts minutes holds only its own thread.  Containers are
started by the runner's detached monitors, as with ``pybuild run -d``: the service owns
no container, so killing it loses nothing (the next call reads the same records).
"""

from __future__ import annotations

import os
import re
import socketserver
import stat
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote, urlsplit

from . import (
    archive,
    build,
    children,
    containers,
    events,
    execs,
    image_archives,
    images,
    networks,
    registry_auth,
    system,
    volumes,
)
from .http import API_VERSION, MIN_API_VERSION, ApiError, Request, api_error

if TYPE_CHECKING:
    import ssl

Route = tuple[str, "re.Pattern[str]", Callable[[Request], Any]]
_VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def _routes() -> list[Route]:
    table = []
    for module in (system, events, containers, archive, execs, image_archives, images, registry_auth, build, networks, volumes):
        for method, pattern, func in module.ROUTES:
            table.append((method, re.compile("^" + pattern + "$"), func))
    return table


_ROUTES = _routes()
def _sweep_networks(root: str) -> None:
    """What every CLI command does first: undo the networks of dead containers, and wait
    for the teardowns exiting containers run in the background (their records stay
    locked meanwhile), so a network removed next has no member left."""
    if os.path.isdir(os.path.join(root, "netns")):
        from runner.network import sweep

        try:
            sweep(root)
        except OSError:
            pass  # the call itself reports what matters to it


def _version_ok(version: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    return key(MIN_API_VERSION) <= key(version) <= key(API_VERSION)


class Handler(BaseHTTPRequestHandler):
    """Routes one request to its API area's function."""

    protocol_version = "HTTP/1.1"
    server_version = "pybuild"
    root = ""  # set by serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        if os.environ.get("PYBUILD_DEBUG"):
            sys.stderr.write("pybuild service: " + (format % args) + "\n")

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        versioned = _VERSION_PREFIX.match(path)
        if versioned:
            if not _version_ok(versioned.group(1)):
                self._fail(ApiError(400, f"client version {versioned.group(1)} is too new or too old: "
                                         f"the service speaks {MIN_API_VERSION} to {API_VERSION}"))
                return
            path = versioned.group(2)
        method = "GET" if self.command == "HEAD" else self.command
        if method in ("POST", "DELETE"):
            _sweep_networks(self.root)
        for verb, pattern, func in _ROUTES:
            match = pattern.match(path)
            if match and verb == method:
                request = Request(self, self.root, match.groups(), url.query)
                try:
                    result = func(request)
                except Exception as err:  # every failure is docker's error body, never a dropped connection
                    if request.answered:
                        self.close_connection = True
                        return
                    if not isinstance(err, (ApiError,)) and os.environ.get("PYBUILD_DEBUG"):
                        traceback.print_exc()
                    self._fail(api_error(err))
                    return
                if not request.answered:
                    request.send(200 if result is not None else 204, result)
                return
        self._fail(ApiError(404, f"page not found: {self.command} {path}"))

    def _fail(self, err: ApiError) -> None:
        body = Request(self, self.root, (), "")
        body.send(err.status, {"message": err.message})

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

    def setup(self) -> None:
        super().setup()
        children.hide(self.connection.fileno())

    def finish(self) -> None:
        children.release(self.connection.fileno())
        try:
            super().finish()
        except OSError:
            pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # http.server wants a (host, port) client address
        conn, _ = self.socket.accept()
        return conn, ("local", 0)


class _TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: "ssl.SSLContext | None" = None

    def get_request(self):
        conn, addr = self.socket.accept()
        if self.tls is not None:  # the handshake happens in the connection's thread, at its first read
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr


def tls_context(ca: str, cert: str, key: str) -> "ssl.SSLContext":
    """dockerd's ``--tlsverify``: our certificate, and client certificates signed by ``ca`` required."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def make_server(root: str, address: str, tls: "ssl.SSLContext | None" = None) -> socketserver.BaseServer:
    """Bind ``unix:///PATH`` (mode 0660) or ``tcp://HOST:PORT`` (with ``tls``: client certificates)."""
    handler = type("BoundHandler", (Handler,), {"root": root})
    if address.startswith("unix://"):
        path = address[len("unix://"):]
        if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a socket a killed service left; nothing listens on it
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        old = os.umask(0o117)
        try:
            server: socketserver.BaseServer = _UnixServer(path, handler)
        finally:
            os.umask(old)
        os.chmod(path, 0o660)
        _give_to_group(path)
    elif address.startswith("tcp://"):
        host, _, port = address[len("tcp://"):].rpartition(":")
        server = _TcpServer((host.strip("[]") or "127.0.0.1", int(port)), handler)
        server.tls = tls
    else:
        raise ApiError(400, f"invalid socket {address!r}: use unix:///PATH or tcp://HOST:PORT")
    children.hide(server.socket.fileno())  # type: ignore[attr-defined]
    return server


def _give_to_group(path: str) -> None:
    """The socket's group is ``pybuild`` where that group exists (its members may use the API)."""
    import grp

    try:
        os.chown(path, -1, grp.getgrnam("pybuild").gr_gid)
    except KeyError:
        pass


def serve(root: str, address: str, timeout: float | None = None, ready: Callable[[], None] | None = None,
          tls: "ssl.SSLContext | None" = None) -> None:
    """Answer requests until interrupted (or ``timeout`` seconds without a request)."""
    server = make_server(root, address, tls)
    system.startup(root)
    if ready is not None:
        ready()
    if timeout:
        server.timeout = timeout
        idle = threading.Event()
        server.handle_timeout = idle.set  # type: ignore[method-assign]
        while not idle.is_set():
            server.handle_request()
    else:
        server.serve_forever()
