"""Replaying a receipt: the generation regenerated bit for bit from the ledger and the store, and its expert calls
re-checked.

A receipt of verified generation names its request object (prompt and sampling settings, by CID) and the sealed
chunks that hold its calls (height, transaction hash, records CID). :func:`replay_receipt`:

1. replays the chain (every block checked by the ledger's rules) and finds each chunk's transaction at its height,
   with the receipt's records CID; the records' accepted outputs must hash to the transaction's ``outputs_root``;
2. assembles the model the genesis names (the trusted part and every expert by CID);
3. decodes the request again, the experts answered from the accepted outputs (``RecordedExperts``: no expert
   runs; a row never recorded is an error), and compares the tokens with the receipt's digests;
4. re-computes ``fraction`` of the chunks' calls (1: all, drawn from ``seed``) with the ledger's experts and
   checks each against its accepted CID.

Steps 3 and 4 run with as many torch threads as the chunks were computed with (their records say): a product's
bits depend on how many threads split it.

:func:`audit_generation` does step 4 for every chunk of a chain that ``bmoe audit`` has already replayed and
judged, with the records' match of step 1.

Must not know: HTTP, the CLI, how the receipt reached the caller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bmoe.ledger.blocks import Block
from bmoe.ledger.generation import output_leaf
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.ledger.transactions import tx_hash
from bmoe.lm.decoding.engine import complete
from bmoe.lm.decoding.expert_calls import CallRows, ModelExperts, RecordedExperts
from bmoe.lm.decoding.token_digest import tokens_sha256
from bmoe.lm.model import MoETransformer
from bmoe.protocol.generation.billing import settlement_mismatch
from bmoe.protocol.generation.chunk import rows_bytes
from bmoe.protocol.generation.decoding import read_request
from bmoe.protocol.generation.records import ChunkRecords, decode_records
from bmoe.protocol.lm.trusted import assemble, decode_trusted
from bmoe.storage import BlobStore, cid_of


class ReplayError(ValueError):
    """A receipt the chain or the store does not back."""


@dataclass
class ChunkCheck:
    """Calls re-computed and those whose result was not the accepted output."""

    rechecked: int = 0
    wrong: list[str] = field(default_factory=list)  # "chunk C slot S (layer L, expert E)"
    misbilled: list[str] = field(default_factory=list)  # settlements the records do not back (billing.py)
    missized: list[str] = field(default_factory=list)  # placements whose slot sizes are not the stored objects'


@dataclass(frozen=True)
class ReplayReport:
    tokens: list[int]
    tokens_match: bool  # the regenerated tokens have the receipt's completion digest
    prompt_match: bool
    chunks: int
    calls: int
    check: ChunkCheck


@dataclass(frozen=True)
class SealedChunks:
    """The chain's generation chunks, by transaction hash: (height, payload); and its last state."""

    by_tx: dict[str, tuple[int, Mapping[str, Any]]]
    state: LedgerState


def sealed_chunks(blocks: Iterable[Block]) -> SealedChunks:
    """Replay ``blocks`` (every rule checked) and collect their generation chunks."""
    state, found = LedgerState(), {}
    for block in blocks:
        state = apply_block(state, block)
        for tx in block.transactions:
            if tx.kind == "generation_chunk":
                found[tx_hash(tx)] = (block.header.height, tx.payload)
    return SealedChunks(found, state)


def ledger_model(state: LedgerState, store: BlobStore, experts: Sequence[bytes] | None = None) -> MoETransformer:
    """The model the genesis names, assembled from the store (``experts``: its expert objects, already read)."""
    trusted = store.get(state.gate_cid)
    if experts is None:
        experts = [store.get(cid) for cid in state.expert_cids]
    return assemble(decode_trusted(trusted)[1], trusted, list(experts)).eval()


def chunk_records(payload: Mapping[str, Any], store: BlobStore) -> ChunkRecords:
    """A sealed chunk's records, checked against its transaction's ``outputs_root``."""
    records = decode_records(store.get(payload["records"]))
    root = merkle_root([output_leaf(c.slot, c.accepted) for c in records.calls]) if records.calls else "0" * 64
    if root != payload["outputs_root"] or (records.generation, records.chunk) != (payload["generation"],
                                                                                 payload["chunk"]):
        raise ReplayError(f"chunk {payload['chunk']}: its records do not match its transaction")
    return records


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Torch on ``threads`` threads for the block, as before after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def recheck(records: ChunkRecords, model: MoETransformer, fraction: float, rng: random.Random,
            check: ChunkCheck) -> None:
    """Re-compute ``fraction`` of ``records``' calls with ``model``'s experts against their accepted CIDs."""
    experts, per_layer = ModelExperts(model), model.config.num_local_experts
    for call in records.calls:
        if fraction < 1 and rng.random() >= fraction:
            continue
        layer, expert = divmod(call.slot, per_layer)
        with torch_threads(records.threads):
            outputs = experts(layer, {expert: call.inputs})[expert]
        check.rechecked += 1
        if cid_of(rows_bytes(outputs)) != call.accepted:
            check.wrong.append(f"chunk {records.chunk} slot {call.slot} (layer {layer}, expert {expert})")


def replay_receipt(receipt: Mapping[str, Any], blocks: Iterable[Block], store: BlobStore, fraction: float = 1.0,
                   seed: int = 0) -> ReplayReport:
    """Regenerate ``receipt``'s tokens from the chain ``blocks`` and ``store`` and re-check ``fraction`` of its
    calls; :class:`ReplayError` when the receipt names what the chain or store does not hold."""
    ledger = receipt.get("ledger")
    if not isinstance(ledger, Mapping) or not ledger.get("chunks") or not ledger.get("request"):
        raise ReplayError("the receipt names no ledger chunks: it is not a verified generation's receipt")
    sealed = sealed_chunks(blocks)
    model = ledger_model(sealed.state, store)
    per_layer = model.config.num_local_experts
    calls: dict[tuple[int, int], list[CallRows]] = defaultdict(list)
    check, rng, threads = ChunkCheck(), random.Random(seed), set()
    for named in ledger["chunks"]:
        height, payload = sealed.by_tx.get(named["tx"], (None, None))
        if payload is None or height != named["height"] or payload["records"] != named["records"]:
            raise ReplayError(f"chunk {named['chunk']}: no such transaction at height {named['height']} on the chain")
        records = chunk_records(payload, store)
        threads.add(records.threads)
        for key, rows in records.with_outputs(store, per_layer).items():
            calls[key].append(rows)
        recheck(records, model, fraction, rng, check)
    try:
        prompt, params = read_request(store.get(ledger["request"]))
    except ValueError as err:  # not a request object: the receipt names something else
        raise ReplayError(f"the receipt's request {ledger['request']}: {err}") from None
    completion = receipt["completion"]
    params = dataclasses.replace(params, max_tokens=completion["tokens"], stop=())  # stops only cut the text
    merged = {key: CallRows(*(torch.cat([getattr(p, name) for p in parts]) for name in
                              ("sequences", "positions", "produced", "inputs", "outputs")))
              for key, parts in calls.items()}
    if len(threads) > 1:
        raise ReplayError(f"the chunks were computed with different thread counts {sorted(threads)}")
    try:
        with torch_threads(threads.pop()):
            tokens = complete(model, prompt, params, caller=RecordedExperts(merged)).tokens
    except KeyError as err:
        raise ReplayError(f"the records do not hold every call of this generation: {err}") from None
    return ReplayReport(tokens, tokens_sha256(tokens) == completion["sha256"],
                        tokens_sha256(prompt) == receipt["prompt"]["sha256"], len(ledger["chunks"]),
                        sum(len(parts) for parts in calls.values()), check)


def placement_size_errors(placements: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> list[str]:
    """Each placement whose ``slot_bytes`` are not ``sizes``, those of the expert objects the genesis names (what
    the placement rule placed by, and what the ledger's rules cannot see): one line each."""
    sizes = list(sizes)
    errors = []
    for payload in placements:
        declared = list(payload["slot_bytes"])
        if declared != sizes:
            slot = next((i for i, (a, b) in enumerate(zip(declared, sizes, strict=False)) if a != b),
                        min(len(declared), len(sizes)))
            errors.append(f"placement epoch {payload['epoch']}: slot {slot}'s size is not its stored expert's")
    return errors


def audit_generation(state: LedgerState, blocks: Iterable[Block], store: BlobStore, fraction: float = 1.0,
                     seed: int = 0) -> tuple[int, ChunkCheck]:
    """Every generation chunk of a chain already judged (``state``: the state its replay ended on, as ``bmoe
    audit``'s chain check leaves it; the blocks are not applied again): its records match its transaction, and
    ``fraction`` of its calls re-computed match their accepted outputs, and its settlement (a paid session) has the
    load and the edges' accepted calls its records show; (chunks, the check)."""
    payloads, settlements, placements = [], {}, []
    for block in blocks:
        for tx in block.transactions:
            if tx.kind == "generation_chunk":
                payloads.append(tx.payload)
            elif tx.kind == "settlement":
                settlements[(tx.payload["generation"], tx.payload["chunk"])] = tx.payload
            elif tx.kind == "placement":
                placements.append(tx.payload)
    experts = [store.get(cid) for cid in state.expert_cids] if payloads or placements else []  # read once
    check = ChunkCheck(missized=placement_size_errors(placements, [len(data) for data in experts]))
    if not payloads:
        return 0, check
    model, rng = ledger_model(state, store, experts), random.Random(seed)
    for payload in payloads:  # in chain order
        records = chunk_records(payload, store)
        recheck(records, model, fraction, rng, check)
        settlement = settlements.get((payload["generation"], payload["chunk"]))
        mismatch = None if settlement is None else settlement_mismatch(records, payload, settlement)
        if mismatch is not None:
            check.misbilled.append(mismatch)
    return len(payloads), check
