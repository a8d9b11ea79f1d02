"""An HTTP proxy that breaks things on purpose, between pybuild and a registry.

Rules match a method and a path pattern and apply a fault a number of times:

- ``status``: answer ``status`` (with ``headers``, e.g. ``Retry-After``) instead of forwarding;
- ``drop``: forward, but cut the connection after ``at`` bytes of the response body;
- ``truncate``: forward, but announce and send only ``at`` bytes of the body (a clean short response);
- ``corrupt``: forward, flipping the byte at offset ``at`` of the body;
- ``drop_request``: read ``at`` bytes of the request body, then cut the connection;
- ``redirect``: answer ``307`` with a ``Location`` to the same path and query on ``to`` (``host:port``);
- ``stall``: forward, but after ``at`` bytes of the body send nothing more (the connection stays open);
- ``drip``: forward, but after ``at`` bytes send the body one byte every ``interval`` seconds;
- ``stall_request``: read nothing of the request body and never answer.

With ``relative_locations`` every ``Location`` header is made relative (path and query);
with ``location_host`` its host is replaced by that one (an upload sent to another server).
``upstream_headers`` are added to every forwarded request (a server that authenticates on
the client's behalf, as storage behind a signed URL does).
Every request is logged with its method, path, ``Range`` header, the headers as the client
sent them, and the fault applied.

Two servers misbehave on their own, for the client's deadlines: :class:`SilentServer`
accepts connections and never answers; :class:`DripServer` answers one byte at a time.
:func:`unaccepting_port` gives a port whose listen queue is full, so a connect hangs.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
_CHUNK = 64 * 1024


@dataclass
class Rule:
    method: str
    pattern: str
    action: str
    times: int = 1
    at: int = 0
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    to: str = ""
    interval: float = 0.05

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and re.search(self.pattern, path) is not None


@dataclass
class Logged:
    method: str
    path: str
    range: str | None
    fault: str | None
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """A request header as the client sent it (case-insensitive name)."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class FaultProxy:
    """A threaded reverse proxy on 127.0.0.1 to a plain-HTTP upstream (``host:port``)."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.rules: list[Rule] = []
        self.log: list[Logged] = []
        self.relative_locations = False
        self.location_host: str | None = None
        self.upstream_headers: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def add(self, method: str, pattern: str, action: str, times: int = 1, **kw) -> Rule:
        rule = Rule(method, pattern, action, times, **kw)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.log.clear()

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def faults(self) -> list[Logged]:
        return [entry for entry in self.log if entry.fault]

    def _take(self, method: str, path: str, headers: dict[str, str]) -> Rule | None:
        range_ = next((v for k, v in headers.items() if k.lower() == "range"), None)
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    self.log.append(Logged(method, path, range_, rule.action, headers))
                    return rule
            self.log.append(Logged(method, path, range_, None, headers))
            return None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _cut(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _request_body(self, rule: Rule | None):
                remaining = int(self.headers.get("Content-Length") or 0)
                sent = 0
                while remaining > 0:
                    piece = self.rfile.read(min(_CHUNK, remaining))
                    if not piece:
                        return
                    if rule is not None and rule.action == "drop_request" and sent + len(piece) >= rule.at:
                        raise ConnectionAbortedError
                    remaining -= len(piece)
                    sent += len(piece)
                    yield piece

            def _forward(self) -> None:
                rule = proxy._take(self.command, self.path, dict(self.headers.items()))
                if rule is not None and rule.action == "stall_request":
                    self.close_connection = True
                    proxy._closed.wait()
                    return
                if rule is not None and rule.action in ("status", "redirect"):
                    for _ in self._request_body(None):
                        pass
                    body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
                    extra = dict(rule.headers)
                    if rule.action == "redirect":
                        body, extra["Location"] = b"", f"http://{rule.to}{self.path}"
                    self.send_response(307 if rule.action == "redirect" else rule.status)
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers.update(proxy.upstream_headers)
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=120)
                try:
                    length = self.headers.get("Content-Length")
                    body = self._request_body(rule) if length and int(length) > 0 else None
                    try:
                        upstream.request(self.command, self.path, body=body, headers=headers,
                                         encode_chunked=False)
                    except ConnectionAbortedError:
                        self._cut()
                        return
                    response = upstream.getresponse()
                    self._relay(response, rule)
                finally:
                    upstream.close()

            def _relay(self, response: http.client.HTTPResponse, rule: Rule | None) -> None:
                length = response.getheader("Content-Length")
                data = None if length is not None or self.command == "HEAD" else response.read()
                total = int(length) if length is not None else len(data or b"")
                announced = rule.at if rule is not None and rule.action == "truncate" else total
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() == "location" and proxy.relative_locations:
                        value = re.sub(r"^https?://[^/]+", "", value)
                    if key.lower() == "location" and proxy.location_host:
                        value = re.sub(r"^(https?://)[^/]+", rf"\g<1>{proxy.location_host}", value)
                    if key.lower() not in _HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(announced))
                self.end_headers()
                if self.command == "HEAD":
                    return
                offset = 0
                slow = rule is not None and rule.action in ("stall", "drip")
                while offset < announced:
                    piece = data[offset:offset + _CHUNK] if data is not None else response.read(_CHUNK)
                    if not piece:
                        break
                    piece = piece[:announced - offset]
                    if rule is not None and rule.action == "corrupt" and offset <= rule.at < offset + len(piece):
                        index = rule.at - offset
                        piece = piece[:index] + bytes([piece[index] ^ 0xFF]) + piece[index + 1:]
                    if rule is not None and rule.action == "drop" and offset + len(piece) >= rule.at:
                        self.wfile.write(piece[:max(0, rule.at - offset)])
                        self.wfile.flush()
                        self._cut()
                        return
                    if slow and offset + len(piece) >= rule.at:
                        self.wfile.write(piece[:max(0, rule.at - offset)])
                        self.wfile.flush()
                        if not self._slow(piece[max(0, rule.at - offset):], rule):
                            return
                    else:
                        self.wfile.write(piece)
                    offset += len(piece)
                if announced < total:
                    self.close_connection = True

            def _slow(self, piece: bytes, rule: Rule) -> bool:
                """``stall``: hold the connection until the proxy closes.  ``drip``: send ``piece`` a
                byte every ``rule.interval`` seconds.  False once the client or the proxy gave up."""
                self.close_connection = True
                if rule.action == "stall":
                    proxy._closed.wait()
                    return False
                for index in range(len(piece)):
                    if proxy._closed.wait(rule.interval):
                        return False
                    try:
                        self.wfile.write(piece[index:index + 1])
                        self.wfile.flush()
                    except OSError:
                        return False
                return True

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        return Handler


class _Misbehaving:
    """A TCP server on 127.0.0.1 that hands each connection to :meth:`serve` in a thread."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = 0
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.serve(conn)
            except OSError:
                pass

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop listening and end every connection.  The accept thread is woken by ``shutdown`` and
        joined before the socket is closed: closing under a thread about to call ``accept`` lets
        that call land on whatever socket reuses the descriptor (another test's proxy)."""
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for thread in self._threads:
            thread.join(10)
        self._listener.close()


class SilentServer(_Misbehaving):
    """Accepts connections, reads what is sent, never answers."""

    def serve(self, conn: socket.socket) -> None:
        while not self._closed.is_set():
            ready, _, _ = select.select([conn], [], [], 0.2)
            if ready and not conn.recv(65536):
                return


class DripServer(_Misbehaving):
    """Answers every request with a status line and a header that never ends, one byte every
    ``interval`` seconds (a slow-loris server)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        while not select.select([conn], [], [], 0.2)[0]:
            if self._closed.is_set():
                return
        if not conn.recv(65536):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        while not self._closed.wait(self.interval):
            conn.sendall(b"a")


def unaccepting_port() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket whose accept queue is full (backlog 0, one connection queued), so the
    kernel drops further SYNs and a connect to it hangs.  Close both when done."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    queued = socket.create_connection(listener.getsockname())
    select.select([listener], [], [], 10)  # the connection is in the accept queue: it is full
    return listener, [queued]
