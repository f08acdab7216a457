"""Signed HTTP messages between bmoe processes: canonical strings, signing, checking, replay guard.

Owns the wire format of authenticated requests and replies, with no server inside (the ASGI side
is :mod:`bmoe.net.http.guard`). A request carries five headers:

* ``X-Bmoe-Address``: the sender's address (hex Ed25519 verify key, :mod:`bmoe.ledger.keys`);
* ``X-Bmoe-Timestamp``: Unix time in whole seconds;
* ``X-Bmoe-Nonce``: 32 lower-case hex chars, fresh per request;
* ``X-Bmoe-Content-Sha256``: hex sha256 of the body (of ``b""`` when there is none), or, for a body
  sent as a frame (content type ``application/x-bmoe-frame``), the frame's digest: the sha256 of its head,
  which lists each object's CID and size (:func:`content_digest`, :func:`bmoe.net.frames.frame_digest`);
* ``X-Bmoe-Signature``: Ed25519 signature of :meth:`RequestHead.canonical`, the lines
  ``BMOE-HTTP-REQUEST-V1``, method, raw path, raw query, Host, body sha256, timestamp, nonce,
  address. The body hash is signed as a header, so a server checks the signature before it reads
  a byte of the body, then checks the body against the hash. Signing ``Host`` binds a request to
  the node it was sent to: replayed to another node, it fails the signature check.

A server accepts a request from an enrolled address with a valid signature, a timestamp within
``window`` seconds of its clock, and a nonce it has not seen from that address in the window
(:class:`NonceCache`). Each refusal is a :class:`Refusal` with an HTTP status and a reason code.

Replies are signed too: ``X-Bmoe-Address`` + ``X-Bmoe-Signature`` over
:meth:`ResponseHead.canonical` (status, the request's nonce, body sha256, ``X-Bmoe-Size``, the
node's address; a ``HEAD`` reply hashes the empty body the client receives), which binds each
reply to the request that asked for it. The one exception is a successful ``GET`` of blob bytes
(``application/octet-stream``): the CID already authenticates the content and the client verifies
it, so those bytes are streamed unhashed. A frame's reply, like a frame's request, signs the frame's digest
(:func:`content_digest`): its reader checks every object against the CID the signed head lists
(:func:`bmoe.net.frames.decode_frame`), so the objects are hashed once, as their CIDs, not once more as a body.

:class:`SignedAuth` is the client helper: an ``httpx.Auth`` that signs every request and, when told
whom to trust, checks every signed reply.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Collection, Generator, Mapping
from dataclasses import dataclass
from heapq import heappop, heappush

import httpx

from bmoe.ledger.keys import Identity, is_address, is_signature_hex, verify_signature
from bmoe.net.errors import UnauthenticResponse
from bmoe.net.frames import FRAME_MEDIA_TYPE, frame_digest
from bmoe.storage.digest import sha256_hex

ADDRESS_HEADER = "x-bmoe-address"
TIMESTAMP_HEADER = "x-bmoe-timestamp"
NONCE_HEADER = "x-bmoe-nonce"
BODY_HASH_HEADER = "x-bmoe-content-sha256"
SIGNATURE_HEADER = "x-bmoe-signature"
SIZE_HEADER = "x-bmoe-size"
"""Blob size on ``HEAD`` replies; signed, since a ``HEAD`` reply has no body to hash."""

REQUEST_DOMAIN = "BMOE-HTTP-REQUEST-V1"
RESPONSE_DOMAIN = "BMOE-HTTP-RESPONSE-V1"
BLOB_MEDIA_TYPE = "application/octet-stream"

DEFAULT_WINDOW_S = 60.0  # clock skew tolerated between machines, and how long nonces are remembered
DEFAULT_MAX_BODY = 16 * 1024 * 1024  # bytes; larger than any expert of the paper's presets
DEFAULT_NONCE_CAPACITY = 200_000  # remembered nonces: ~3300 requests/s sustained over a 60 s window

_NONCE = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNED_HEADERS = (ADDRESS_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, BODY_HASH_HEADER, SIGNATURE_HEADER)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: HTTP status, a stable reason code, a one-line message."""

    status: int
    reason: str
    message: str

    def body(self) -> dict[str, str]:
        """The JSON error body every refusal carries."""
        return {"error": self.message, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RequestHead:
    """Everything a request signature covers. ``path`` and ``query`` are raw (percent-encoded)."""

    method: str
    path: str
    query: str
    host: str
    body_sha256: str
    timestamp: int
    nonce: str
    address: str

    def canonical(self) -> bytes:
        """The exact bytes that are signed."""
        lines = [REQUEST_DOMAIN, self.method.upper(), self.path, self.query, self.host, self.body_sha256,
                 str(self.timestamp), self.nonce, self.address]
        return "\n".join(lines).encode("utf-8")


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """Everything a reply signature covers."""

    status: int
    request_nonce: str
    body_sha256: str
    size: str
    address: str

    def canonical(self) -> bytes:
        """The exact bytes that are signed."""
        lines = [RESPONSE_DOMAIN, str(self.status), self.request_nonce, self.body_sha256, self.size, self.address]
        return "\n".join(lines).encode("utf-8")


def is_nonce(value: object) -> bool:
    """True for a syntactically valid nonce (32 lower-case hex chars)."""
    return isinstance(value, str) and _NONCE.fullmatch(value) is not None


def content_digest(body: bytes, content_type: str = "") -> str:
    """The digest of ``body`` that a signature covers: its SHA-256, or for a frame (``content_type`` is the frame
    media type and ``body`` starts with a whole frame head) the frame's digest, the SHA-256 of its head, whose
    objects the frame's reader checks against their CIDs (:func:`bmoe.net.frames.frame_digest`). The content type
    is not signed: a reply or request whose type is changed on the way has its digest computed the other way,
    which no longer matches the signed one."""
    if content_type.startswith(FRAME_MEDIA_TYPE):
        digest = frame_digest(body)
        if digest is not None:
            return digest
    return sha256_hex(body)


# --- requests ------------------------------------------------------------------------------
def sign_request(identity: Identity, method: str, path: str, query: str, host: str, body: bytes,
                 *, timestamp: int | None = None, nonce: str | None = None, content_type: str = "") -> dict[str, str]:
    """The five authentication headers for a request; fresh timestamp and nonce unless given."""
    head = RequestHead(
        method=method.upper(), path=path, query=query, host=host, body_sha256=content_digest(body, content_type),
        timestamp=int(time.time()) if timestamp is None else timestamp,
        nonce=secrets.token_hex(16) if nonce is None else nonce, address=identity.address,
    )
    return {
        ADDRESS_HEADER: head.address,
        TIMESTAMP_HEADER: str(head.timestamp),
        NONCE_HEADER: head.nonce,
        BODY_HASH_HEADER: head.body_sha256,
        SIGNATURE_HEADER: identity.sign(head.canonical()),
    }


def read_request_head(method: str, path: str, query: str, host: str,
                      headers: Mapping[str, str]) -> tuple[RequestHead, str] | Refusal:
    """Parse the authentication headers into ``(head, signature)``, or say what is wrong with them."""
    present = [name for name in _SIGNED_HEADERS if name in headers]
    if not present:
        return Refusal(401, "missing_auth", "request is not signed: X-Bmoe-* authentication headers are missing")
    missing = [name for name in _SIGNED_HEADERS if name not in headers]
    if missing:
        return Refusal(401, "malformed_auth", f"request is missing the header(s) {', '.join(missing)}")
    address, timestamp, nonce = headers[ADDRESS_HEADER], headers[TIMESTAMP_HEADER], headers[NONCE_HEADER]
    body_hash, signature = headers[BODY_HASH_HEADER], headers[SIGNATURE_HEADER]
    checks = [
        (is_address(address), f"{ADDRESS_HEADER} must be 64 lower-case hex chars"),
        (_TIMESTAMP.fullmatch(timestamp) is not None, f"{TIMESTAMP_HEADER} must be Unix seconds"),
        (is_nonce(nonce), f"{NONCE_HEADER} must be 32 lower-case hex chars"),
        (_SHA256.fullmatch(body_hash) is not None, f"{BODY_HASH_HEADER} must be 64 lower-case hex chars"),
        (is_signature_hex(signature), f"{SIGNATURE_HEADER} must be 128 lower-case hex chars"),
    ]
    for ok, message in checks:
        if not ok:
            return Refusal(401, "malformed_auth", message)
    head = RequestHead(method.upper(), path, query, host, body_hash, int(timestamp), nonce, address)
    return head, signature


def check_request(head: RequestHead, signature: str, enrolled: Collection[str], now: float,
                  window: float) -> Refusal | None:
    """Who sent it and whether it is genuine and fresh (the nonce is checked by :class:`NonceCache`)."""
    if head.address not in enrolled:
        return Refusal(403, "unknown_key", f"sender {head.address} is not enrolled on this node")
    if not verify_signature(head.address, head.canonical(), signature):
        return Refusal(401, "bad_signature", "signature does not match the request and sender")
    if abs(now - head.timestamp) > window:
        return Refusal(401, "stale_timestamp",
                       f"timestamp {head.timestamp} is more than {window:g} s away from this node's clock")
    return None


class NonceCache:
    """Nonces seen per sender, each kept until its timestamp leaves the acceptance window.

    A request older than the window is refused by its timestamp, so remembering nonces any longer
    adds nothing. ``capacity`` bounds memory; when full, requests are refused as ``busy`` (503)
    rather than forgetting nonces early, which would reopen a replay hole.
    """

    def __init__(self, window: float = DEFAULT_WINDOW_S, capacity: int = DEFAULT_NONCE_CAPACITY) -> None:
        self.window = window
        self.capacity = capacity
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def admit(self, address: str, nonce: str, timestamp: int, now: float) -> Refusal | None:
        """Record ``nonce`` for ``address``; a refusal if it was seen already (or the cache is full)."""
        key = (address, nonce)
        with self._lock:
            while self._heap and self._heap[0][0] < now:
                _, old = heappop(self._heap)
                self._expiry.pop(old, None)
            if key in self._expiry:
                return Refusal(409, "replayed", f"nonce {nonce} from {address} was already used")
            if len(self._expiry) >= self.capacity:
                return Refusal(503, "busy", "too many requests in the replay window; retry later")
            expiry = timestamp + self.window
            self._expiry[key] = expiry
            heappush(self._heap, (expiry, key))
        return None

    def __len__(self) -> int:
        return len(self._expiry)


# --- replies -------------------------------------------------------------------------------
def needs_signature(method: str, status: int, content_type: str) -> bool:
    """Every reply is signed except the bytes of a successful blob ``GET`` (its CID authenticates it)."""
    return not (method.upper() == "GET" and status == 200 and content_type.startswith(BLOB_MEDIA_TYPE))


def sign_response(identity: Identity, status: int, request_nonce: str, body: bytes, size: str = "",
                  content_type: str = "") -> dict[str, str]:
    """The two headers that sign a reply (a frame's: ``body`` need only hold its head, :func:`content_digest`)."""
    head = ResponseHead(status, request_nonce, content_digest(body, content_type), size, identity.address)
    return {ADDRESS_HEADER: identity.address, SIGNATURE_HEADER: identity.sign(head.canonical())}


def check_response(status: int, headers: Mapping[str, str], body: bytes, request_nonce: str,
                   trusted: Collection[str]) -> str | None:
    """Why a reply is not authentic (signed by a trusted address, for this request), or None."""
    address, signature = headers.get(ADDRESS_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    if not address or not signature:
        return "reply is not signed"
    if address not in trusted:
        return f"reply is signed by {address}, which is not a trusted key for this server"
    digest = content_digest(body, headers.get("content-type", ""))
    head = ResponseHead(status, request_nonce, digest, headers.get(SIZE_HEADER, ""), address)
    if not verify_signature(address, head.canonical(), signature):
        return "reply signature does not match its status, body and request"
    return None


# --- the httpx client helper ---------------------------------------------------------------
Trust = Collection[str] | Mapping[str, str] | None
"""Whom to trust for replies: addresses (any of them, any server), or origin URL -> address, or nobody
checked (None)."""


def origin_of(url: httpx.URL) -> str:
    """``scheme://host:port`` of a URL, with the port written out (the key of a trust mapping)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.scheme}://{host}:{port}"


class SignedAuth(httpx.Auth):
    """``httpx.Auth`` that signs each request with ``identity`` and checks signed replies.

    ``trusted``: addresses allowed to sign replies, or a mapping from origin URL to the one address
    allowed for that server (origins not in the mapping are not checked), or None to check nothing.
    A reply that fails the check raises :class:`UnauthenticResponse` from the request call.
    """

    def __init__(self, identity: Identity, trusted: Trust = None) -> None:
        self.identity = identity
        self.trusted = trusted

    def _sign(self, request: httpx.Request) -> None:
        path, _, _ = request.url.raw_path.partition(b"?")
        headers = sign_request(self.identity, request.method, path.decode("latin-1"),
                               request.url.query.decode("latin-1"), request.headers.get("host", ""),
                               request.content, content_type=request.headers.get("content-type", ""))
        request.headers.update(headers)

    def _trusted_for(self, request: httpx.Request) -> Collection[str] | None:
        if self.trusted is None:
            return None
        if isinstance(self.trusted, Mapping):
            address = self.trusted.get(origin_of(request.url))
            return None if address is None else (address,)
        return self.trusted

    def _must_check(self, response: httpx.Response) -> Collection[str] | None:
        trusted = self._trusted_for(response.request)
        if trusted is None:
            return None
        content_type = response.headers.get("content-type", "")
        return trusted if needs_signature(response.request.method, response.status_code, content_type) else None

    def _check(self, response: httpx.Response, trusted: Collection[str]) -> None:
        nonce = response.request.headers.get(NONCE_HEADER, "")
        problem = check_response(response.status_code, response.headers, response.content, nonce, trusted)
        if problem is not None:
            url = origin_of(response.request.url)
            raise UnauthenticResponse(f"{response.request.method} {response.request.url.path} on {url}: {problem}")

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        self._sign(request)
        response = yield request
        trusted = self._must_check(response)
        if trusted is not None:
            response.read()
            self._check(response, trusted)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        self._sign(request)
        response = yield request
        trusted = self._must_check(response)
        if trusted is not None:
            await response.aread()
            self._check(response, trusted)
