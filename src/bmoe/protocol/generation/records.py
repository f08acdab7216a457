"""A chunk's call records, the object its ledger transaction names by CID (``records``).

One safetensors file: for each call (slot s), its rows' ``s.sequences``, ``s.positions`` (the token each row
belongs to), ``s.produced`` (the token its step generated) and ``s.inputs`` (n, d) float32; and in the metadata
(key :data:`RECORDS_KEY`, JSON) the generation, chunk, seed, policy and the torch threads it was computed with
(a product's bits depend on how many threads split it: a replay and an audit compute with as many), and for each
call: its slot, the inputs'
SHA-256, the primary that answered on the fast path and the CID of what it answered, the accepted output's CID
(the object of the call's accepted rows), whether it was checked, its replicas, whether it was disputed, and every
signed commitment. With the ledger's experts, anyone can re-compute any call from these records and check it
against the accepted CID; with the accepted outputs, anyone can replay the generation without an expert
(``lm.decoding.expert_calls.RecordedExperts``).

Must not know: the ledger's rules, the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from bmoe.lm.decoding.expert_calls import CallRows
from bmoe.moe.payloads import PayloadError
from bmoe.storage import BlobStore, deserialize_tensors, serialize_tensors

RECORDS_KEY = "bmoe_generation_records"
RECORDS_VERSION = 1


@dataclass(frozen=True)
class CallRecord:
    """One call of a chunk, as recorded."""

    slot: int
    sequences: torch.Tensor  # (n,) int64
    positions: torch.Tensor  # (n,) int64
    produced: torch.Tensor  # (n,) int64
    inputs: torch.Tensor  # (n, d) float32
    inputs_sha256: str
    primary: str
    fast: str  # CID of the fast path's outputs
    accepted: str  # CID of the accepted outputs
    checked: bool
    replicas: list[str]
    disputed: bool
    commitments: dict[str, dict[str, str]]  # edge -> {outputs, signature}

    def meta(self) -> dict[str, Any]:
        return {"slot": self.slot, "rows": int(self.inputs.shape[0]), "inputs": self.inputs_sha256,
                "primary": self.primary, "fast": self.fast, "accepted": self.accepted, "checked": self.checked,
                "replicas": self.replicas, "disputed": self.disputed, "commitments": self.commitments}


@dataclass(frozen=True)
class ChunkRecords:
    """A chunk's records, read back."""

    generation: str
    chunk: int
    seed: int
    policy: str
    calls: list[CallRecord]
    threads: int = 1  # torch threads the chunk was computed with

    def with_outputs(self, store: BlobStore, experts_per_layer: int) -> dict[tuple[int, int], CallRows]:
        """Each call's rows with its accepted outputs, read from ``store``: (layer, expert) -> rows."""
        rows = {}
        for call in self.calls:
            outputs = outputs_from_bytes(store.get(call.accepted), call.inputs.shape)
            rows[divmod(call.slot, experts_per_layer)] = CallRows(call.sequences, call.positions, call.produced,
                                                                  call.inputs, outputs)
        return rows


def outputs_from_bytes(data: bytes, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Output rows stored as float32 little-endian bytes, in ``shape`` (n, d); PayloadError for other bytes."""
    n, d = shape
    if len(data) != 4 * n * d:
        raise PayloadError(f"an output object of {len(data)} bytes is not {n} x {d} float32 rows")
    return torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(n, d)


def encode_records(generation: str, chunk: int, seed: int, policy: str, calls: list[CallRecord], threads: int
                   ) -> bytes:
    tensors: dict[str, torch.Tensor] = {}
    for call in calls:
        tensors[f"{call.slot}.sequences"] = call.sequences.to(torch.int64)
        tensors[f"{call.slot}.positions"] = call.positions.to(torch.int64)
        tensors[f"{call.slot}.produced"] = call.produced.to(torch.int64)
        tensors[f"{call.slot}.inputs"] = call.inputs.to(torch.float32)
    meta = {"version": RECORDS_VERSION, "generation": generation, "chunk": chunk, "seed": seed, "policy": policy,
            "threads": threads, "calls": [call.meta() for call in calls]}
    return serialize_tensors(tensors, {RECORDS_KEY: json.dumps(meta, sort_keys=True)})


def decode_records(data: bytes) -> ChunkRecords:
    """A chunk's records; PayloadError for bytes that are not."""
    try:
        tensors, metadata = deserialize_tensors(data)
        meta = json.loads(metadata[RECORDS_KEY])
        calls = [CallRecord(c["slot"], tensors[f"{c['slot']}.sequences"], tensors[f"{c['slot']}.positions"],
                            tensors[f"{c['slot']}.produced"], tensors[f"{c['slot']}.inputs"], c["inputs"],
                            c["primary"], c["fast"], c["accepted"], c["checked"], c["replicas"], c["disputed"],
                            c["commitments"]) for c in meta["calls"]]
        threads = meta["threads"]
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024:
            raise ValueError(f"threads {threads!r}")
        return ChunkRecords(meta["generation"], meta["chunk"], meta["seed"], meta["policy"], calls, threads)
    except PayloadError:
        raise
    except Exception as err:  # any unreadable object is refused the same way
        raise PayloadError(f"not a generation chunk's records ({type(err).__name__}: {err})") from None
