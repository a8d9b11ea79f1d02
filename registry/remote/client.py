"""The distribution API for one repository: manifests, blobs, uploads, mounts.

Every method maps to one or two HTTP requests of the OCI Distribution spec.
Blob downloads stream and resume with ``Range`` after a dropped connection;
uploads follow the ``Location`` the registry returns (relative or absolute,
keeping its query), monolithic (POST + PUT) or chunked (POST, PATCH..., PUT).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import httpcore
import httpx

from .. import oci
from ..errors import DigestMismatch
from .errors import RegistryError, RegistryTimeout, TransferError
from .session import Session
from .transport import RETRY_STATUSES, debug, describe

MANIFEST_ACCEPT = ", ".join(oci.MANIFEST_TYPES + oci.INDEX_TYPES)
MAX_MANIFEST_BYTES = 4 << 20
_RAW_READ = 1 << 20
_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws")


@dataclass
class RemoteManifest:
    """A manifest or index as the registry served it (bytes kept exactly)."""

    raw: bytes
    media_type: str
    digest: str

    @property
    def descriptor(self) -> oci.Descriptor:
        return oci.Descriptor(self.media_type, self.digest, len(self.raw))


class RegistryClient:
    """One repository of one registry, for pulling or (with ``push``) pushing."""

    def __init__(self, registry: str, repository: str, *, push: bool = False, insecure: bool = False,
                 session: Session | None = None):
        self.session = session or Session.shared(registry, insecure)
        self.registry = registry
        self.repository = repository
        actions = "pull,push" if push else "pull"
        self.scopes = frozenset({f"repository:{repository}:{actions}"})

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def _request(self, method: str, path: str, *, scopes: frozenset[str] | None = None, **kwargs) -> httpx.Response:
        return self.session.request(method, path, scopes or self.scopes, **kwargs)

    # ---- manifests ---------------------------------------------------------------

    def get_manifest(self, ref: str) -> RemoteManifest:
        """Fetch a manifest or index by tag or digest, verifying a digest reference."""
        what = f"reading manifest {self.name}{_sep(ref)}{ref}"
        response = self._request("GET", f"/v2/{self.repository}/manifests/{ref}",
                                 headers={"Accept": MANIFEST_ACCEPT}, stream=True, follow_redirects=True)
        try:
            if response.status_code != 200:
                raise self.session.fail(response, what)
            raw = _read_capped(response, MAX_MANIFEST_BYTES, what)
        finally:
            response.close()
        digest = oci.sha256_digest(raw)
        if ref.startswith("sha256:") and digest != ref:
            raise DigestMismatch(f"{what}: the registry sent content with digest {digest}; refusing it")
        media_type = _manifest_media_type(response.headers.get("content-type", ""), raw)
        if media_type in _SCHEMA1:
            raise RegistryError(f"{what}: Docker schema 1 manifests are not supported; push the image again with a "
                                f"current client")
        return RemoteManifest(raw, media_type, digest)

    def head_manifest(self, ref: str) -> oci.Descriptor | None:
        """The descriptor of a tag or digest, or ``None`` when the registry does not have it."""
        response = self._request("HEAD", f"/v2/{self.repository}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT},
                                 follow_redirects=True)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.session.fail(response, f"checking manifest {self.name}{_sep(ref)}{ref}")
        digest = response.headers.get("docker-content-digest")
        if not digest:
            return None
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return oci.Descriptor(media_type, digest, int(response.headers.get("content-length") or 0))

    def put_manifest(self, ref: str, raw: bytes, media_type: str) -> str:
        """Upload a manifest under a tag or its digest; return the digest."""
        response = self._request("PUT", f"/v2/{self.repository}/manifests/{ref}", content=raw,
                                 headers={"Content-Type": media_type})
        if response.status_code not in (200, 201):
            raise self.session.fail(response, f"pushing manifest {self.name}{_sep(ref)}{ref}")
        digest = oci.sha256_digest(raw)
        served = response.headers.get("docker-content-digest")
        if served and served != digest:
            raise DigestMismatch(f"{self.registry} stored manifest {self.name}:{ref} as {served}, expected {digest}")
        return digest

    # ---- blobs -------------------------------------------------------------------

    def head_blob(self, digest: str) -> int | None:
        """The size of a blob the repository has, or ``None``."""
        response = self._request("HEAD", f"/v2/{self.repository}/blobs/{digest}", follow_redirects=True)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.session.fail(response, f"checking blob {digest} in {self.name}")
        return int(response.headers.get("content-length") or 0)

    def open_blob(self, desc: oci.Descriptor) -> "BlobReader":
        """A stream of a blob's bytes that resumes with ``Range`` after connection failures."""
        return BlobReader(self, desc)

    def read_small_blob(self, desc: oci.Descriptor, limit: int) -> bytes:
        """A whole small blob (a signature payload, an attestation), refused above ``limit`` bytes
        and checked against its digest: what a registry serves is not trusted."""
        if not 0 <= desc.size <= limit:
            raise RegistryError(f"blob {desc.digest} in {self.name} claims {desc.size} bytes (limit {limit}); "
                                f"refusing it")
        data = bytearray()
        with self.open_blob(desc) as stream:
            while chunk := stream.read(1 << 20):
                data += chunk
        if len(data) != desc.size or oci.sha256_digest(bytes(data)) != desc.digest:
            raise DigestMismatch(f"blob {desc.digest} from {self.name} does not match its digest")
        return bytes(data)

    def mount_blob(self, digest: str, from_repository: str) -> tuple[bool, str | None]:
        """Try a cross-repository mount: ``(True, None)`` when mounted, else ``(False, upload_location)``."""
        scopes = self.scopes | {f"repository:{from_repository}:pull"}
        query = httpx.QueryParams({"mount": digest, "from": from_repository})
        response = self._request("POST", f"/v2/{self.repository}/blobs/uploads/?{query}", scopes=scopes)
        if response.status_code == 201:
            return True, None
        if response.status_code == 202:
            return False, self._location(response)
        raise self.session.fail(response, f"mounting blob {digest} into {self.name}")

    def start_upload(self) -> str:
        """Open an upload session; return its location URL."""
        response = self._request("POST", f"/v2/{self.repository}/blobs/uploads/")
        if response.status_code != 202:
            raise self.session.fail(response, f"starting a blob upload to {self.name}")
        return self._location(response)

    def upload_blob(self, desc: oci.Descriptor, chunks: Iterable[bytes], *, chunk_size: int | None = None,
                    location: str | None = None) -> None:
        """Upload a blob's bytes: one PUT, or PATCHes of ``chunk_size`` bytes then a PUT."""
        what = f"uploading blob {desc.digest} to {self.name}"
        location = location or self.start_upload()
        body: Iterable[bytes] | None = chunks
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(desc.size)}
        if chunk_size:
            location = self._patch_chunks(location, chunks, chunk_size, what)
            body, headers = None, {"Content-Length": "0"}
        url = httpx.URL(location).copy_add_param("digest", desc.digest)
        response = self._send_upload("PUT", str(url), body, headers, what)
        if response.status_code != 201:
            raise self.session.fail(response, what)
        served = response.headers.get("docker-content-digest")
        if served and served != desc.digest:
            raise DigestMismatch(f"{what}: the registry computed {served}")

    def _patch_chunks(self, location: str, chunks: Iterable[bytes], chunk_size: int, what: str) -> str:
        offset = 0
        for piece in _rechunk(chunks, chunk_size):
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(piece)),
                       "Content-Range": f"{offset}-{offset + len(piece) - 1}"}
            response = self._send_upload("PATCH", location, piece, headers, what)
            if response.status_code != 202:
                raise self.session.fail(response, what)
            location = self._location(response)
            offset += len(piece)
        return location

    def _send_upload(self, method: str, url: str, body, headers: dict[str, str], what: str) -> httpx.Response:
        """An upload request; a lost connection or a 408/429/5xx answer is a :class:`TransferError`
        (the caller may start the blob again), never a silent replay of a half-sent body."""
        try:
            response = self._request(method, url, content=body, headers=headers, retry=False)
        except TransferError as err:
            raise type(err)(f"{what}: {err}") from None
        if response.status_code in RETRY_STATUSES:
            raise TransferError(f"{what}: {self.registry} answered {response.status_code}")
        return response

    def _location(self, response: httpx.Response) -> str:
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"{self.registry} started an upload without a Location header")
        return str(response.request.url.join(location))


class BlobReader:
    """Reads one blob from the registry; a dropped or short response is resumed with ``Range``."""

    def __init__(self, client: RegistryClient, desc: oci.Descriptor):
        self.client = client
        self.desc = desc
        self.offset = 0
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] = iter(())
        self._pending = memoryview(b"")
        self._resumes = 0
        self._first_failure: float | None = None
        self._open()

    def _open(self) -> None:
        headers = {"Range": f"bytes={self.offset}-"} if self.offset else {}
        what = f"downloading blob {self.desc.digest} from {self.client.name}"
        response = self.client._request("GET", f"/v2/{self.client.repository}/blobs/{self.desc.digest}",
                                        headers=headers, stream=True, follow_redirects=True)
        skip = 0
        if response.status_code == 200:
            skip = self.offset
        elif response.status_code == 206 and self.offset:
            start = response.headers.get("content-range", "").removeprefix("bytes ").split("-")[0]
            if start != str(self.offset):
                response.close()
                raise TransferError(f"{what}: the registry resumed at the wrong offset")
        else:
            try:
                raise self.client.session.fail(response, what)
            finally:
                response.close()
        self._response = response
        self._chunks = _body_chunks(response)
        while skip > 0:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._pending = memoryview(chunk)[skip:]
            skip -= min(skip, len(chunk))

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (fewer at chunk boundaries); ``b""`` at the end."""
        while not self._pending:
            if self.offset >= self.desc.size:
                return b""
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._resume(TransferError("the body ended early"))
                continue
            except (httpx.TransportError, httpcore.NetworkError, httpcore.TimeoutException, TransferError) as exc:
                self._resume(exc)
                continue
            if size is None or size < 0 or len(chunk) <= size:
                return self._count(chunk)
            self._pending = memoryview(chunk)
        take = len(self._pending) if size is None or size < 0 else min(size, len(self._pending))
        out = bytes(self._pending[:take])
        self._pending = self._pending[take:]
        return self._count(out)

    def _count(self, out: bytes) -> bytes:
        self.offset += len(out)
        if self.offset > self.desc.size:
            raise DigestMismatch(f"blob {self.desc.digest} from {self.client.name} is longer than {self.desc.size} bytes")
        return out

    def _resume(self, cause: BaseException) -> None:
        """Start again at :attr:`offset`, within the retry policy's attempts and its time budget
        (counted from the first failure: a registry that keeps timing out is not waited on for ever)."""
        self.close()
        policy = self.client.session.transport.retry
        now = time.monotonic()
        if self._first_failure is None:
            self._first_failure = now
        if self._resumes + 1 >= policy.attempts or now - self._first_failure >= policy.budget:
            timeout = isinstance(cause, (httpx.TimeoutException, httpcore.TimeoutException, RegistryTimeout))
            raise (RegistryTimeout if timeout else TransferError)(
                f"downloading blob {self.desc.digest} from {self.client.name} failed at byte {self.offset} of "
                f"{self.desc.size}: {describe(cause)}") from None
        delay = policy.delay(self._resumes)
        self._resumes += 1
        debug(f"blob {self.desc.digest[:19]} interrupted at {self.offset}: {describe(cause)}; resuming in {delay:.2f}s")
        time.sleep(delay)
        self._open()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def __enter__(self) -> "BlobReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _body_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The body's bytes.  For a plain HTTP/1.1 body of known length, after the first chunk (which
    empties h11's buffer) the rest is read straight from the connection in 1 MiB reads: a third
    of the CPU of going through h11 in 64 KiB events.  The connection is then closed, not reused."""
    chunks = response.iter_raw()
    stream = response.extensions.get("network_stream")
    length = response.headers.get("content-length", "")
    if (stream is None or response.http_version != "HTTP/1.1" or not length.isdigit()
            or response.headers.get("content-encoding") or response.headers.get("transfer-encoding")):
        yield from chunks
        return
    first = next(chunks, b"")
    got, length_ = len(first), int(length)
    if first:
        yield first
    while got < length_:
        data = stream.read(min(_RAW_READ, length_ - got))  # the stream enforces the deadlines
        if not data:
            raise TransferError("the connection closed before the end of the body")
        got += len(data)
        yield data


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _read_capped(response: httpx.Response, limit: int, what: str) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) > limit:
            raise RegistryError(f"{what}: the manifest is larger than {limit >> 20} MiB; refusing it")
    return bytes(data)


def _manifest_media_type(content_type: str, raw: bytes) -> str:
    media_type = content_type.split(";")[0].strip()
    if media_type in oci.MANIFEST_TYPES + oci.INDEX_TYPES + _SCHEMA1:
        return media_type
    try:
        doc = json.loads(raw)
    except ValueError:
        raise RegistryError("the registry sent a manifest that is not JSON") from None
    if isinstance(doc, dict) and doc.get("mediaType"):
        return str(doc["mediaType"])
    if isinstance(doc, dict) and "manifests" in doc:
        return oci.OCI_INDEX
    return oci.OCI_MANIFEST


def _sep(ref: str) -> str:
    return "@" if ref.startswith("sha256:") else ":"
