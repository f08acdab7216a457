"""Generation on the ledger: one ``generation_chunk`` transaction per verified chunk of decoding.

Verified generation (``protocol/generation``) decodes on a fast path (one edge answers each (layer, expert) call
of a step) and, after a chunk of steps, has the chunk's calls re-computed by replicas. The ledger records each
chunk in one transaction from a validator:

- ``generation``, ``chunk``: the generation session's id and the chunk's index (0, 1, ... in order);
- ``records``: the CID of the chunk's call records in the store (every call's routed rows, its inputs' digest, who
  answered, who re-computed, every signed commitment: ``protocol/generation/records.py``);
- ``outputs_root``: the Merkle root (``ledger/merkle.py``) over the accepted outputs, one leaf per call
  (:func:`output_leaf`: the slot and the CID of its accepted output rows), in slot order;
- ``calls``, ``rows``, ``tokens``, ``checked``: counts (calls made, rows computed, tokens generated, calls
  re-computed by replicas);
- ``seed``: the chunk's verification seed (which calls are checked, by which replicas);
- ``disputes``: only the calls whose answers differed, each with its evidence on the ledger: the inputs' digest,
  the accepted output's CID and every signed commitment (edge -> its outputs' CID and its signature over
  :func:`call_message`); the accepted CID needs a quorum of the enrolled edges (more than half), or under a placement
  (``ledger/placement.py``) of the slot's holders;
- ``records_against``: an edge that committed another output than the accepted one in a disputed call
  (``dissent``, slashed where the run has stake) with the rows where it differed, as (sequence, position) of the
  token each row belongs to (at most :data:`MAX_ROWS_NAMED`); or an edge that was asked and gave no commitment
  (``withheld``: not slashed, there is no evidence).

So an honest chunk costs the ledger one small transaction, and a lie puts its evidence on the chain. The rules
are here, as functions returning the reason a chunk is refused (``ledger/state.py`` applies them).

Must not know: tensors, the engine, edges' transport, storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.ledger.keys import verify_signature

CALL_DOMAIN = "bmoe-generation-call-v1"  # what an edge's commitment signature is over
MAX_ROWS_NAMED = 64  # rows a record names (the first where the edge differed, in call order)


def call_message(generation: str, chunk: int, slot: int, inputs: str, outputs: str) -> bytes:
    """The bytes an edge signs to commit to ``outputs`` (a CID) for the call of ``slot`` in a chunk, on the inputs
    whose SHA-256 is ``inputs`` (hex)."""
    return canonical_json({"domain": CALL_DOMAIN, "generation": generation, "chunk": chunk, "slot": slot,
                           "inputs": inputs, "outputs": outputs})


def output_leaf(slot: int, cid: str) -> str:
    """The Merkle leaf of one call's accepted output."""
    return sha256_hex(f"{slot} {cid}".encode("ascii"))


def quorum(edges: int) -> int:
    """Commitments that must agree on an accepted output in a disputed call: more than half the enrolled edges."""
    return edges // 2 + 1


def dispute_error(generation: str, chunk: int, dispute: Mapping[str, Any], enrolled: Sequence[str]) -> str | None:
    """Why a disputed call's evidence does not hold, or None: every commitment is an ``enrolled`` edge's, signed
    over this call, and the accepted output has a quorum of them. ``enrolled``: every enrolled edge, or under a
    placement (``ledger/placement.py``) the slot's holders."""
    slot = dispute["slot"]
    for edge, commitment in dispute["commitments"].items():
        if edge not in enrolled:
            return f"slot {slot}: {edge[:12]} is not an enrolled edge"
        message = call_message(generation, chunk, slot, dispute["inputs"], commitment["outputs"])
        if not verify_signature(edge, message, commitment["signature"]):
            return f"slot {slot}: {edge[:12]}'s commitment signature does not verify"
    supporters = sum(c["outputs"] == dispute["accepted"] for c in dispute["commitments"].values())
    if supporters < quorum(len(enrolled)):
        return (f"slot {slot}: the accepted output has {supporters} commitments, fewer than the quorum "
                f"{quorum(len(enrolled))} of {len(enrolled)} edges")
    return None


def record_error(record: Mapping[str, Any], disputes: Mapping[int, Mapping[str, Any]]) -> str | None:
    """Why a record against an edge is not what its dispute's evidence shows, or None."""
    slot, edge = record["slot"], record["edge"]
    dispute = disputes.get(slot)
    if dispute is None:
        return f"slot {slot}: a record against {edge[:12]} without its dispute"
    commitment = dispute["commitments"].get(edge)
    if record["reason"] == "withheld":
        return None if commitment is None else f"slot {slot}: {edge[:12]} committed: it did not withhold"
    if commitment is None:
        return f"slot {slot}: {edge[:12]} committed nothing: no dissent to record"
    if commitment["outputs"] == dispute["accepted"]:
        return f"slot {slot}: {edge[:12]} committed the accepted output"
    return None if record["rows"] else f"slot {slot}: a dissent names no row"
