"""The validator's side of a generation edge process: :class:`RemoteGenerationEdge`, the
:class:`~bmoe.protocol.generation.edges.GenerationEdge` interface (``address``, ``compute``, ``commit``, ``alive``,
``rows_computed``) over HTTP, so ``VerifiedDecoding`` runs on edge processes as it runs on in-process edges.

One kept-alive connection per edge (httpx, Nagle off), every request signed by the caller's key and every reply
checked against the edge's key. Whatever goes wrong costs at most ``timeout`` seconds and ends the edge's part in
the session: a connection refused, reset or timed out raises
:class:`~bmoe.protocol.generation.edges.EdgeGone`; an answer that is not what was asked (an error reply, a reply
the edge did not sign, outputs not of the rows' shape and dtype for exactly the experts asked, a commitment whose
signature does not verify) raises :class:`~bmoe.protocol.generation.fast_path.MalformedAnswer` (an ``EdgeGone``:
nothing it said is used). Either way the edge answers nothing more (``alive`` is False), as a killed in-process
edge, so a session that still asks it (a chunk's replicas) pays no second timeout.

Must not know: the chunk's decision, sequences, the ledger.
"""

from __future__ import annotations

from typing import NoReturn

import httpx
import torch

from bmoe.ledger.generation import call_message
from bmoe.ledger.keys import Identity, verify_signature
from bmoe.net.errors import UnauthenticResponse
from bmoe.net.frames import FRAME_MEDIA_TYPE
from bmoe.net.generation.wire import WireError, decode_calls, encode_calls
from bmoe.net.http.auth import SignedAuth, origin_of
from bmoe.net.http.tcp import client_transport
from bmoe.protocol.generation.edges import EdgeGone
from bmoe.protocol.generation.fast_path import MalformedAnswer

DEFAULT_TIMEOUT_S = 5.0


class RemoteGenerationEdge:
    """The edge process at ``url`` whose key is ``address``, called with ``caller``'s key (a validator's)."""

    def __init__(self, url: str, address: str, caller: Identity, timeout: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._address = address
        self.alive = True
        self.rows_computed = 0  # expert rows this edge answered for (the fleet's extra compute is counted from these)
        self.requests: dict[str, int] = {"/compute": 0, "/commit": 0}  # round trips made, by route
        auth = SignedAuth(caller, trusted={origin_of(httpx.URL(self.url)): address})
        self._client = httpx.Client(base_url=self.url, auth=auth, timeout=timeout,
                                    transport=transport if transport is not None else client_transport())

    @property
    def address(self) -> str:
        return self._address

    def compute(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """One layer's calls: expert -> its rows (n_e, d) in, expert -> outputs (n_e, d) out."""
        reply = self._post("/compute", content=encode_calls(layer, routed),
                           headers={"content-type": FRAME_MEDIA_TYPE})
        try:
            answered, outputs = decode_calls(reply.content)
        except WireError as exc:
            self._malformed(f"no expert outputs ({exc})")
        if answered != layer or set(outputs) != set(routed):
            self._malformed(f"experts {sorted(outputs)} of layer {answered} for experts {sorted(routed)} of "
                            f"layer {layer}")
        for expert, rows in routed.items():
            out = outputs[expert]
            if out.shape != rows.shape or out.dtype != rows.dtype:
                self._malformed(f"expert {expert} of layer {layer}: {tuple(out.shape)} {out.dtype} rows for "
                                f"{tuple(rows.shape)} {rows.dtype}")
        self.rows_computed += sum(int(rows.shape[0]) for rows in routed.values())
        return outputs

    def commit(self, generation: str, chunk: int, slot: int, inputs: str, outputs: str) -> str:
        """The edge's signature committing to ``outputs`` (a CID) for the call of ``slot`` on ``inputs`` (the
        inputs' SHA-256), checked against its key."""
        reply = self._post("/commit", json={"generation": generation, "chunk": chunk, "slot": slot,
                                            "inputs": inputs, "outputs": outputs})
        try:
            signature = reply.json().get("signature")
        except (ValueError, AttributeError):
            signature = None
        if not isinstance(signature, str) or not verify_signature(
                self._address, call_message(generation, chunk, slot, inputs, outputs), signature):
            self._malformed(f"no valid signature committing to slot {slot} of chunk {chunk}")
        return signature

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, **request: object) -> httpx.Response:
        if not self.alive:
            raise EdgeGone(self._address)
        self.requests[path] += 1
        try:
            reply = self._client.post(path, **request)  # type: ignore[arg-type]
        except httpx.TransportError:  # refused, reset, timed out: the process is gone or as good as gone
            self.alive = False
            raise EdgeGone(self._address) from None
        except UnauthenticResponse:
            self._malformed("a reply it did not sign")
        if reply.status_code != 200:
            self._malformed(f"HTTP {reply.status_code} to {path}: {reply.text[:200]}")
        return reply

    def _malformed(self, what: str) -> NoReturn:
        self.alive = False
        raise MalformedAnswer(self._address, what)
