"""``HttpBlobStore``: the ``BlobStore`` contract over one or more storage nodes, trusting none of them.

Owns the client side of the storage service (:mod:`bmoe.net.store.service`). Every request is
signed with the caller's identity (:class:`~bmoe.net.http.auth.SignedAuth`); with ``node_addresses``
the client also checks that each signed reply comes from the key enrolled for that node.

* ``put`` sends the blob (with its locally computed CID as ``?cid=``) to the first node of the
  CID's rendezvous order that accepts it; that node stores it and replicates it to its peers.
* ``get`` asks the nodes in rendezvous order (responsible nodes first, then the others) and
  hashes what each one sends: a node that sends bytes not matching the CID, or reports its copy
  corrupt, is skipped. It raises ``CorruptObject`` when the only copies found are bad,
  ``ObjectNotFound`` when every node says it has none, :class:`RemoteStoreError` otherwise.
* ``has`` / ``size`` ask with ``HEAD``: present if any node holds it, absent if none of the nodes
  that answered does (a copy that lives only on unreachable nodes reads as absent); they raise
  :class:`RemoteStoreError` when no node answers at all.
* ``verify`` is whether an intact copy can be fetched (``get`` without the bytes).
* ``delete`` asks every node to drop its copy. Nodes refuse unless started with
  ``--allow-delete`` (objects are ledger evidence): a refusal raises :class:`DeleteRefused`.
* ``cids`` is the union of every reachable node's listing (with replication, one lost node loses
  no CID from it).

Network failures (refused connections, timeouts) are retried ``retries`` times per node with
exponential back-off from ``retry_backoff`` seconds; then the next node is tried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from bmoe.ledger.keys import Identity
from bmoe.net.errors import DeleteRefused, RemoteStoreError, UnauthenticResponse
from bmoe.net.frames import FRAME_MEDIA_TYPE, encode_frame
from bmoe.net.http.auth import DEFAULT_MAX_BODY, SIZE_HEADER, SignedAuth
from bmoe.net.http.tcp import client_transport
from bmoe.net.store.placement import normalize_url, rendezvous_order
from bmoe.storage.cid import cid_of, parse_cid, verify_cid
from bmoe.storage.errors import CorruptObject, ObjectNotFound
from bmoe.storage.store import PublicApiStore, as_bytes

T = TypeVar("T")
_NETWORK_ERRORS = (httpx.TransportError, UnauthenticResponse)


def _json(reply: httpx.Response) -> dict[str, object]:
    """The reply's JSON object, or ``{}`` if it is not one."""
    try:
        body = reply.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(reply: httpx.Response) -> tuple[str, str]:
    """``(reason code, one-line description)`` of an error reply."""
    body = _json(reply)
    if "reason" in body:
        return str(body["reason"]), f"{reply.status_code} {body['reason']}: {body.get('error', '')}"
    return "", f"HTTP {reply.status_code}"


class HttpBlobStore(PublicApiStore):
    """Blobs on remote storage nodes; every read is verified against its CID on this side."""

    def __init__(self, nodes: Sequence[str], identity: Identity, *, node_addresses: Mapping[str, str] | None = None,
                 timeout: float = 10.0, connect_timeout: float = 2.0, retries: int = 1, retry_backoff: float = 0.1,
                 max_body: int = DEFAULT_MAX_BODY, list_page: int = 1000,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not nodes:
            raise ValueError("HttpBlobStore needs at least one storage node URL")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.nodes = tuple(dict.fromkeys(normalize_url(node) for node in nodes))
        self.identity = identity
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.max_body = max_body
        self.list_page = list_page
        self._replication: int | None = None  # the nodes' replication setting, read at the first put_many
        trusted = None if node_addresses is None else {normalize_url(u): a for u, a in node_addresses.items()}
        if trusted is not None and (missing := [n for n in self.nodes if n not in trusted]):
            raise ValueError(f"node_addresses has no address for {', '.join(missing)}")
        self._client = httpx.Client(auth=SignedAuth(identity, trusted), transport=transport or client_transport(),
                                    timeout=httpx.Timeout(timeout, connect=connect_timeout))

    # --- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpBlobStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpBlobStore({list(self.nodes)!r})"

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for tries in range(self.retries + 1):
            try:
                return attempt()
            except httpx.TransportError:
                if tries == self.retries:
                    raise
                time.sleep(self.retry_backoff * 2**tries)
        raise AssertionError("unreachable")

    def _request(self, node: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._retrying(lambda: self._client.request(method, f"{node}{path}", **kwargs))

    def _download(self, node: str, cid: str) -> tuple[str, bytes | str]:
        """``("ok", bytes)`` or ``(kind, why)`` with kind ``missing``, ``corrupt`` or ``failed``."""

        def attempt() -> tuple[str, bytes | str]:
            with self._client.stream("GET", f"{node}/blobs/{cid}") as reply:
                if reply.status_code != 200:
                    reply.read()
                    reason, why = _reason(reply)
                    kind = {"not_found": "missing", "corrupt": "corrupt"}.get(reason, "failed")
                    return kind, why
                chunks, size = [], 0
                for chunk in reply.iter_bytes():
                    size += len(chunk)
                    if size > self.max_body:
                        return "failed", f"sent more than {self.max_body} bytes"
                    chunks.append(chunk)
            data = b"".join(chunks)
            if not verify_cid(cid, data):
                return "corrupt", "sent bytes that do not match the CID"
            return "ok", data

        try:
            return self._retrying(attempt)
        except _NETWORK_ERRORS as exc:
            return "failed", f"{type(exc).__name__}: {exc}"

    # --- BlobStore ---------------------------------------------------------------------------
    def put(self, data: bytes) -> str:
        """Store ``data`` on the first node of its rendezvous order that takes it (it replicates); its CID."""
        blob = as_bytes(data)
        if len(blob) > self.max_body:
            raise ValueError(f"blob of {len(blob)} bytes is larger than the storage limit of {self.max_body} bytes")
        cid = cid_of(blob)
        failures: dict[str, str] = {}
        for node in rendezvous_order(cid, self.nodes):
            try:
                reply = self._request(node, "PUT", "/blobs", params={"cid": cid}, content=blob)
            except _NETWORK_ERRORS as exc:
                failures[node] = f"{type(exc).__name__}: {exc}"
                continue
            if reply.status_code == 200 and _json(reply).get("cid") == cid:
                return cid
            failures[node] = _reason(reply)[1]
        raise RemoteStoreError(f"cannot store {cid} on any storage node", failures)

    def put_many(self, blobs: Sequence[bytes], *, durable: bool = False) -> list[str]:
        """Store ``blobs`` with one request per node, all at once (``POST /batch?replica=1``): each blob to the
        first ``replication`` nodes of its rendezvous order (the nodes' setting, read once from ``/health``), so
        its copies are written side by side rather than forwarded one after the other. A node that fails has its
        blobs put one by one instead (:meth:`put`: the next nodes, which replicate). Their CIDs.

        ``durable``: return only once every blob is durable: each node syncs in the same request (``sync=1``:
        the batch, then its ``syncfs``), and blobs put one by one are followed by :meth:`sync`."""
        params = {"replica": "1", **({"sync": "1"} if durable else {})}
        copies = self._copies()
        groups: dict[str, dict[str, bytes]] = {}
        cids = []
        for data in blobs:
            blob = as_bytes(data)
            cid = cid_of(blob)
            cids.append(cid)
            for node in rendezvous_order(cid, self.nodes)[:copies]:
                groups.setdefault(node, {})[cid] = blob

        def send(node: str, batch: dict[str, bytes]) -> list[bytes]:
            try:
                reply = self._request(node, "POST", "/batch", params=params,
                                      content=encode_frame({}, batch), headers={"content-type": FRAME_MEDIA_TYPE})
                if reply.status_code == 200 and set(_json(reply).get("cids") or ()) == set(batch):  # type: ignore[arg-type]
                    return []
            except _NETWORK_ERRORS:
                pass
            return list(batch.values())

        with ThreadPoolExecutor(max_workers=max(1, len(groups))) as pool:
            failed = [blob for left in pool.map(lambda item: send(*item), groups.items()) for blob in left]
        for blob in failed:
            self.put(blob)
        if failed and durable:
            self.sync()
        return cids

    def _copies(self) -> int:
        """How many nodes hold each blob: the nodes' replication setting (1 when no node says)."""
        if self._replication is None:
            for node in self.nodes:
                try:
                    self._replication = max(1, int(self.node_info(node, "/health").get("replication", 1)))  # type: ignore[call-overload]
                    break
                except (*_NETWORK_ERRORS, httpx.HTTPStatusError, ValueError):
                    continue
        return min(self._replication or 1, len(self.nodes))

    def sync(self) -> None:
        """Every object stored so far durable on every node that answers (``POST /sync``: one ``syncfs`` each);
        :class:`RemoteStoreError` when none does."""
        def sync(node: str) -> str | None:
            try:
                reply = self._request(node, "POST", "/sync")
            except _NETWORK_ERRORS as exc:
                return f"{type(exc).__name__}: {exc}"
            return None if reply.status_code == 200 else _reason(reply)[1]

        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:  # every node at once
            failures = {node: why for node, why in zip(self.nodes, pool.map(sync, self.nodes), strict=True) if why}
        if len(failures) == len(self.nodes):
            raise RemoteStoreError("no storage node synced its objects", failures)

    def get(self, cid: str) -> bytes:
        """The bytes of ``cid`` from the first node that sends intact ones."""
        key = parse_cid(cid)
        outcomes: dict[str, tuple[str, str]] = {}
        for node in rendezvous_order(key, self.nodes):
            kind, result = self._download(node, key)
            if kind == "ok":
                assert isinstance(result, bytes)
                return result
            outcomes[node] = (kind, str(result))
        kinds = {kind for kind, _ in outcomes.values()}
        failures = {node: f"{kind}: {why}" for node, (kind, why) in outcomes.items()}
        if kinds == {"missing"}:
            raise ObjectNotFound(key, f"storage nodes {', '.join(self.nodes)}")
        if "corrupt" in kinds and "failed" not in kinds:
            detail = "; ".join(f"{node}: {why}" for node, why in failures.items())
            raise CorruptObject(f"object {key} is corrupt on every storage node that has it ({detail})", cid=key)
        raise RemoteStoreError(f"cannot get {key} from any storage node", failures)

    def verify(self, cid: str) -> bool:
        """Whether an intact copy of ``cid`` can be fetched; :class:`ObjectNotFound` if no node has one."""
        try:
            self.get(cid)
        except CorruptObject:
            return False
        return True

    def _heads(self, cid: str, *, first: bool) -> tuple[dict[str, int], dict[str, str], bool]:
        """``HEAD`` the nodes: ``(sizes of holders, failures, whether any node answered)``."""
        sizes: dict[str, int] = {}
        failures: dict[str, str] = {}
        answered = False
        for node in rendezvous_order(cid, self.nodes):
            try:
                reply = self._request(node, "HEAD", f"/blobs/{cid}")
            except _NETWORK_ERRORS as exc:
                failures[node] = f"{type(exc).__name__}: {exc}"
                continue
            if reply.status_code == 200 and reply.headers.get(SIZE_HEADER, "").isdigit():
                answered = True
                sizes[node] = int(reply.headers[SIZE_HEADER])
                if first:
                    break
            elif reply.status_code == 404:
                answered = True
            else:
                failures[node] = f"HTTP {reply.status_code}"
        return sizes, failures, answered

    def has(self, cid: str) -> bool:
        """Whether any node holds ``cid`` (unverified)."""
        key = parse_cid(cid)
        sizes, failures, answered = self._heads(key, first=True)
        if not answered:
            raise RemoteStoreError(f"cannot ask any storage node about {key}", failures)
        return bool(sizes)

    def size(self, cid: str) -> int:
        """Stored size of ``cid`` as reported by the first node that holds it."""
        key = parse_cid(cid)
        sizes, failures, answered = self._heads(key, first=True)
        if sizes:
            return next(iter(sizes.values()))
        if not answered:
            raise RemoteStoreError(f"cannot ask any storage node about {key}", failures)
        raise ObjectNotFound(key, f"storage nodes {', '.join(self.nodes)}")

    def locate(self, cid: str) -> list[str]:
        """Every reachable node that holds a copy of ``cid``, in rendezvous order."""
        return list(self._heads(parse_cid(cid), first=False)[0])

    def delete(self, cid: str) -> bool:
        """Ask every node to drop ``cid``; whether any held it. Raises :class:`DeleteRefused` if one refuses."""
        key = parse_cid(cid)
        deleted = False
        failures: dict[str, str] = {}
        refused: str | None = None
        for node in self.nodes:
            try:
                reply = self._request(node, "DELETE", f"/blobs/{key}")
            except _NETWORK_ERRORS as exc:
                failures[node] = f"{type(exc).__name__}: {exc}"
                continue
            if reply.status_code == 200:
                deleted = deleted or bool(_json(reply).get("deleted"))
            elif _reason(reply)[0] == "delete_disabled":
                refused = refused or node
            else:
                failures[node] = _reason(reply)[1]
        if refused is not None:
            raise DeleteRefused(key, refused)
        if failures:
            raise RemoteStoreError(f"delete of {key} is incomplete", failures)
        return deleted

    def _node_cids(self, node: str) -> Iterator[str]:
        after: str | None = None
        while True:
            params = {"limit": str(self.list_page)} | ({"after": after} if after else {})
            reply = self._request(node, "GET", "/blobs", params=params)
            if reply.status_code != 200:
                raise RemoteStoreError(f"cannot list {node}", {node: _reason(reply)[1]})
            page = reply.json()
            yield from (parse_cid(cid) for cid in page["cids"])
            after = page.get("next")
            if not after:
                return

    def cids(self) -> Iterator[str]:
        """The union of every reachable node's CIDs, sorted."""
        found: set[str] = set()
        failures: dict[str, str] = {}
        for node in self.nodes:
            try:
                found.update(self._node_cids(node))
            except (*_NETWORK_ERRORS, RemoteStoreError, ValueError, KeyError) as exc:
                failures[node] = f"{type(exc).__name__}: {exc}"
        if len(failures) == len(self.nodes):
            raise RemoteStoreError("cannot list any storage node", failures)
        return iter(sorted(found))

    def node_info(self, node: str, route: str = "/stats") -> dict[str, object]:
        """A node's ``/stats`` (or ``/health``) reply, signed-checked like every other reply."""
        reply = self._request(normalize_url(node), "GET", route)
        reply.raise_for_status()
        return dict(reply.json())
