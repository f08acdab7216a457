"""``IpfsStore``: the ``BlobStore`` contract on an IPFS node, over the kubo HTTP RPC, trusting the node for nothing.

Owns the RPC calls, kept to the subset kubo and js-ipfs both serve (``/api/v0/...``, all POST):

* ``put`` = ``add`` with ``cid-version=1``, ``raw-leaves=true``, ``chunker=size-262144``, ``hash=sha2-256``,
  ``pin=true``, ``cid-base=base32``: the parameters under which the node's CID is :func:`cid_of`'s. The
  CID is computed here first and the node's answer must equal it, else :class:`CorruptObject`. Adding
  is idempotent on the node, so ``put`` does not ask first (a node's copy that went bad is not repaired
  by adding it again: the node keeps the block it has, and ``get`` keeps refusing it);
* ``has`` = ``pin/ls`` of the CID (``type=recursive``): an object is in the store while it is pinned;
* ``get`` = ``has``, then ``cat``, verified against the CID by :meth:`BlobStore.get`: nothing unverified
  leaves this class. Asking first costs a round trip and saves the whole timeout on a missing object
  (js-ipfs, and kubo online, search the network for a block they lack until the timeout). Verified
  objects, and those this store put (hashed here), are kept in a bounded cache and served again without
  asking the node: a round reads each expert many times;
* ``delete`` = ``pin/rm``: the object is gone from this store at once, and the node frees its blocks
  at its next garbage collection;
* ``cids`` = every recursive pin that is a CID of this storage layer (CIDv0 pins, other codecs: skipped).

Every call has a client timeout and passes ``timeout`` to the node too (a missing block otherwise makes
js-ipfs search for it forever). A failure is one :class:`IpfsError` line naming the node's URL and the
problem: unreachable, timed out, or the node's own error message.
"""

from __future__ import annotations

import json
import socket
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import httpx

from bmoe.storage.cid import CHUNK_SIZE, cid_of, parse_cid
from bmoe.storage.errors import CorruptObject, InvalidCID, IpfsError, ObjectNotFound
from bmoe.storage.store import BlobStore, as_bytes

DEFAULT_API = "http://127.0.0.1:5001"  # kubo's default RPC address
ADD_PARAMS = {"cid-version": "1", "raw-leaves": "true", "chunker": f"size-{CHUNK_SIZE}", "hash": "sha2-256",
              "pin": "true", "cid-base": "base32", "progress": "false"}
DEFAULT_MAX_OBJECT = 1 << 31  # bytes a ``cat`` answer may have (2 GiB): a node cannot make us read forever
DEFAULT_CACHE = 256 << 20  # bytes of verified objects kept for reads again (a round's experts, gate, answers)
_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # small writes at once, as bmoe.net.http.tcp (~20 % per add)


def _message(reply: httpx.Response) -> str:
    """The node's error text: kubo and js-ipfs answer ``{"Message": ..., "Code": ..., "Type": "error"}``."""
    try:
        body = json.loads(reply.read() or b"{}")
    except ValueError:
        body = {}
    text = body.get("Message") if isinstance(body, dict) else None
    return str(text) if text else f"HTTP {reply.status_code}"


class _VerifiedCache:
    """The most recently used verified objects, up to ``limit`` bytes (least recently used dropped first).

    A round reads the same objects many times (the experts, the gate, each answer); each read from the node
    costs two requests. Objects are immutable and only verified bytes enter, so serving them again is exact.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._objects: OrderedDict[str, bytes] = OrderedDict()

    def find(self, cid: str) -> bytes | None:
        data = self._objects.get(cid)
        if data is not None:
            self._objects.move_to_end(cid)
        return data

    def keep(self, cid: str, data: bytes) -> None:
        if len(data) > self.limit // 4 or cid in self._objects:
            return
        self._objects[cid] = data
        self.size += len(data)
        while self.size > self.limit:
            self.size -= len(self._objects.popitem(last=False)[1])

    def drop(self, cid: str) -> None:
        data = self._objects.pop(cid, None)
        if data is not None:
            self.size -= len(data)


class IpfsStore(BlobStore):
    """Blobs on the IPFS node whose RPC listens at ``api_url``; every read is verified here against its CID.

    ``timeout``: seconds one call may take (the node is told the same); ``connect_timeout``: seconds to
    reach it; ``cache_bytes``: how many bytes of verified objects ``get`` may serve again without asking
    the node (0: none). ``transport`` replaces the network (tests).
    """

    def __init__(self, api_url: str = DEFAULT_API, *, timeout: float = 30.0, connect_timeout: float = 3.0,
                 max_object: int = DEFAULT_MAX_OBJECT, cache_bytes: int = DEFAULT_CACHE,
                 transport: httpx.BaseTransport | None = None) -> None:
        url = api_url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise IpfsError(f"IPFS API {api_url!r} is not an http:// or https:// URL")
        self.api_url = url
        self.timeout = timeout
        self.max_object = max_object
        self._cache = _VerifiedCache(cache_bytes)
        if transport is None:
            transport = httpx.HTTPTransport(socket_options=_NODELAY)
        self._client = httpx.Client(base_url=f"{url}/api/v0", transport=transport,
                                    timeout=httpx.Timeout(timeout, connect=connect_timeout))

    # --- the RPC ------------------------------------------------------------------------------
    def _call(self, command: str, params: dict[str, str], **request: Any) -> httpx.Response:
        """POST ``/api/v0/<command>`` and return the (streamed, open) reply; IpfsError if the node cannot be asked.

        The caller closes the reply. A reply that is not 200 is returned too: what it means depends on the call.
        """
        params = {**params, "timeout": f"{self.timeout:g}s"}
        try:
            send = self._client.build_request("POST", f"/{command}", params=params, **request)
            return self._client.send(send, stream=True)
        except httpx.TimeoutException:
            raise IpfsError(f"IPFS API {self.api_url}: {command} timed out after {self.timeout:g} s") from None
        except httpx.TransportError as err:
            raise IpfsError(f"IPFS API {self.api_url} is unreachable ({command}: {err or type(err).__name__})") \
                from None

    def _read_all(self, reply: httpx.Response, command: str, limit: int) -> bytes:
        """The whole body of ``reply``, at most ``limit`` bytes; IpfsError if it breaks off or runs over."""
        body = bytearray()
        try:
            for piece in reply.iter_bytes():
                body += piece
                if len(body) > limit:
                    raise IpfsError(f"IPFS API {self.api_url}: {command} answered more than {limit} bytes")
        except httpx.TimeoutException:
            raise IpfsError(f"IPFS API {self.api_url}: {command} timed out after {self.timeout:g} s") from None
        except httpx.TransportError as err:
            raise IpfsError(f"IPFS API {self.api_url}: {command} broke off ({err or type(err).__name__})") from None
        finally:
            reply.close()
        return bytes(body)

    def _json(self, command: str, params: dict[str, str], **request: Any) -> Any:
        """The JSON answer of a call that must succeed; IpfsError naming the node's message otherwise."""
        reply = self._call(command, params, **request)
        if reply.status_code != 200:
            raise IpfsError(f"IPFS API {self.api_url}: {command} failed: {self._error(reply)}")
        body = self._read_all(reply, command, 1 << 26)
        try:
            return json.loads(body.splitlines()[-1] if body.strip() else b"null")
        except ValueError:
            raise IpfsError(f"IPFS API {self.api_url}: {command} answered something that is not JSON") from None

    def _error(self, reply: httpx.Response) -> str:
        try:
            return _message(reply)
        except httpx.HTTPError:
            return f"HTTP {reply.status_code}"
        finally:
            reply.close()

    def ping(self) -> str:
        """The node's version (``version``); IpfsError if the API does not answer as a kubo RPC does."""
        answer = self._json("version", {})
        if not isinstance(answer, dict) or not isinstance(answer.get("Version"), str):
            raise IpfsError(f"IPFS API {self.api_url}: version answered no Version: not a kubo HTTP RPC")
        return str(answer["Version"])

    # --- BlobStore --------------------------------------------------------------------------------
    def put(self, data: bytes) -> str:
        """Add ``data`` to the node (pinned) and return its CID; CorruptObject if the node names another CID."""
        blob = as_bytes(data)
        cid = cid_of(blob)
        self._write(cid, blob)
        self._cache.keep(cid, blob)  # hashed here: these bytes are what the CID names
        return cid

    def get(self, cid: str) -> bytes:
        """The bytes of ``cid``: from this process's cache of verified objects, else read and verified."""
        key = parse_cid(cid)
        cached = self._cache.find(key)
        if cached is not None:
            return cached
        try:
            data = super().get(key)  # verified against the CID before it is returned, or kept
        except CorruptObject:
            raise CorruptObject(f"IPFS node {self.api_url} answered bytes for {key} that do not match the CID: "
                                "refused", cid=key) from None
        self._cache.keep(key, data)
        return data

    def delete(self, cid: str) -> bool:
        key = parse_cid(cid)
        self._cache.drop(key)
        return self._remove(key)

    def _write(self, cid: str, data: bytes) -> None:
        files = {"file": ("blob", data, "application/octet-stream")}  # js-ipfs refuses a part without a type
        answer = self._json("add", ADD_PARAMS, files=files)
        named = answer.get("Hash") if isinstance(answer, dict) else None
        try:
            got = parse_cid(named) if isinstance(named, str) else None
        except InvalidCID:
            got = None
        if got != cid:
            raise CorruptObject(f"IPFS API {self.api_url} stored {len(data)} bytes as {named!r}, but their CID is "
                                f"{cid}: the node does not add with CIDv1 raw leaves, or lies", cid=cid)

    def _read(self, cid: str) -> bytes:
        if not self._exists(cid):  # asked first: a cat of a block the node lacks waits for the whole timeout
            raise ObjectNotFound(cid, f"IPFS node {self.api_url} (not pinned there)")
        reply = self._call("cat", {"arg": cid})
        if reply.status_code != 200:
            raise IpfsError(f"IPFS API {self.api_url}: cat {cid} failed: {self._error(reply)}")
        return self._read_all(reply, f"cat {cid}", self.max_object)

    def _exists(self, cid: str) -> bool:
        return self._pin_call("pin/ls", {"arg": cid, "type": "recursive"})

    def _remove(self, cid: str) -> bool:
        return self._pin_call("pin/rm", {"arg": cid})

    def _pin_call(self, command: str, params: dict[str, str]) -> bool:
        """True if the node answers 200, False if it says the CID is not pinned, IpfsError otherwise."""
        reply = self._call(command, params)
        if reply.status_code == 200:
            reply.close()
            return True
        message = self._error(reply)
        if "not pinned" in message:  # kubo and js-ipfs both say so, for pin/ls and pin/rm
            return False
        raise IpfsError(f"IPFS API {self.api_url}: {command} {params['arg']} failed: {message}")

    def _list(self) -> Iterator[str]:
        answer = self._json("pin/ls", {"type": "recursive"})
        keys = answer.get("Keys") if isinstance(answer, dict) else None
        if not isinstance(keys, dict):
            raise IpfsError(f"IPFS API {self.api_url}: pin/ls answered no Keys object")
        ours = set()
        for key in keys:
            try:
                ours.add(parse_cid(key))
            except InvalidCID:
                continue  # CIDv0 and other codecs: pinned by someone else, not addressable here
        return iter(sorted(ours))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IpfsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IpfsStore({self.api_url!r})"
