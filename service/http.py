"""Requests, responses and errors of the Engine API on top of ``http.server``.

Handlers get a :class:`Request` and either return a JSON-able value (sent as 200), raise
:class:`ApiError` (docker's ``{"message": ...}`` body), or take over the socket with
:meth:`Request.stream` (chunked) or :meth:`Request.hijack` (101 UPGRADED, raw).
"""

from __future__ import annotations

import io
import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from registry.errors import ImageNotFound, PybuildError

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"


class ApiError(Exception):
    """A failed request: HTTP status and docker's message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def api_error(err: Exception) -> ApiError:
    """The status docker would give a library error: 404 for what is missing, 409 for a
    conflict, 400 for a bad option, 500 otherwise."""
    from runner.containers import NoSuchContainer
    from runner.errors import RunError

    text = str(err)
    if isinstance(err, ApiError):
        return err
    if isinstance(err, (NoSuchContainer, ImageNotFound)) or "no such" in text.lower() or "not found" in text.lower():
        return ApiError(404, text)
    if "already in use" in text or "already exists" in text or "is running" in text or "in use" in text:
        return ApiError(409, text)
    if isinstance(err, RunError):
        return ApiError(400, text)
    if isinstance(err, PybuildError):
        return ApiError(500 if err.exit_code not in (1, 2) else 400, text)
    return ApiError(500, text)


class Request:
    """One API call: path parameters, query, body, and the way back to the client."""

    def __init__(self, handler: BaseHTTPRequestHandler, root: str, params: tuple[str, ...], query: str):
        self.handler = handler
        self.root = root
        self.params = params
        self.multi = parse_qs(query, keep_blank_values=True)
        self.query = {k: v[-1] for k, v in self.multi.items()}
        self.answered = False

    def arg(self, name: str, default: str = "") -> str:
        """A query parameter as text."""
        return self.query.get(name, default)

    def args(self, name: str) -> list[str]:
        """Every value of a repeated query parameter (``names=a&names=b``)."""
        return self.multi.get(name, [])

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter (``1``/``true``)."""
        value = self.query.get(name)
        return default if value is None else value.lower() in ("1", "true", "yes")

    def json_query(self, name: str) -> Any:
        """A JSON-encoded query parameter (``filters``, ``buildargs``, ``labels``)."""
        text = self.query.get(name)
        if not text:
            return {}
        try:
            return json.loads(text)
        except ValueError:
            raise ApiError(400, f"invalid {name} parameter: not JSON") from None

    def body(self) -> bytes:
        """The whole request body (Content-Length or chunked)."""
        headers = self.handler.headers
        rfile = self.handler.rfile
        if headers.get("Transfer-Encoding", "").lower() == "chunked":
            return b"".join(self.body_chunks())
        return rfile.read(int(headers.get("Content-Length") or 0))

    def body_chunks(self):
        """The body piece by piece (for tar uploads)."""
        headers = self.handler.headers
        rfile = self.handler.rfile
        if headers.get("Transfer-Encoding", "").lower() != "chunked":
            left = int(headers.get("Content-Length") or 0)
            while left > 0:
                piece = rfile.read(min(left, 1 << 16))
                if not piece:
                    return
                left -= len(piece)
                yield piece
            return
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline().strip():
                    pass
                return
            yield rfile.read(size)
            rfile.readline()

    def json(self) -> Any:
        """The body as JSON (``{}`` when empty)."""
        data = self.body()
        if not data.strip():
            return {}
        try:
            return json.loads(data)
        except ValueError:
            raise ApiError(400, "invalid JSON in the request body") from None

    def send(self, status: int, value: Any = None, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> None:
        """A whole response; ``value`` is JSON-encoded unless it is bytes."""
        data = value if isinstance(value, bytes) else (b"" if value is None and status in (204, 304)
                                                       else json.dumps(value).encode() + b"\n")
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for key, val in (headers or {}).items():
            h.send_header(key, val)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
        self.answered = True

    def stream(self, content_type: str = "application/json") -> "Chunked":
        """Start a 200 response whose body is written in chunks as it comes."""
        h = self.handler
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        self.answered = True
        return Chunked(h.wfile)

    def hijack(self, content_type: str = "application/vnd.docker.raw-stream"):
        """Take the connection over: ``101 UPGRADED`` when the client asked to upgrade
        (docker's attach and exec), else a 200 whose body runs to the end of the connection."""
        h = self.handler
        upgrade = "upgrade" in h.headers.get("Connection", "").lower()
        h.close_connection = True
        h.send_response_only(101 if upgrade else 200, "UPGRADED" if upgrade else None)
        h.send_header("Content-Type", content_type)
        if upgrade:
            h.send_header("Connection", "Upgrade")
            h.send_header("Upgrade", h.headers.get("Upgrade") or "tcp")
        h.end_headers()
        h.wfile.flush()
        self.answered = True
        return h.connection


class BodyReader(io.RawIOBase):
    """A file-like view of the request body's pieces."""

    def __init__(self, chunks: Any):
        self.chunks = chunks
        self.rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.rest:
            piece = next(self.chunks, None)
            if piece is None:
                return 0
            self.rest = piece
        n = min(len(buffer), len(self.rest))
        buffer[:n] = self.rest[:n]
        self.rest = self.rest[n:]
        return n

    def drain(self) -> None:
        """Read what the consumer left (a tar's trailing blocks, the chunked body's end), so
        the response is not sent while the client still writes, and the connection stays usable."""
        self.rest = b""
        for _piece in self.chunks:
            pass


class Chunked:
    """The body of a chunked response."""

    def __init__(self, wfile):
        self.wfile = wfile

    def write(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def json(self, value: Any) -> None:
        """One JSON message (progress streams)."""
        self.write(json.dumps(value).encode() + b"\r\n")

    def close(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
