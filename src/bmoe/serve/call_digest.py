"""The digest of the expert calls one request caused, folded step by step from the engine's call log.

For each (layer, expert) a request's rows went through, a running SHA-256 over its rows in the order of their
positions, each row the bytes of: the position of its token in the sequence (int64, little-endian), its input
(d values) and its output (d values), in the model's dtype (float32), little-endian. The request's digest is the
SHA-256 of one ASCII line ``"{layer} {expert} {rows} {row digest hex}\\n"`` per (layer, expert), in ascending
order. The engine's rows do not depend on the other sequences of a batch (``lm/decoding/rows.py``), so the
digest of a request is the same alone or batched; anyone holding the call records can recompute it.

Must not know: HTTP, the API, what a receipt holds beyond this digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from bmoe.lm.decoding.expert_calls import CallRows


@dataclass(frozen=True)
class CallsDigest:
    """A request's expert calls, summarised."""

    rows: int  # expert rows computed (token x chosen expert, every layer)
    experts: int  # distinct (layer, expert) pairs called
    sha256: str  # hex, as the module says

    def to_json(self) -> dict[str, object]:
        return {"rows": self.rows, "experts": self.experts, "sha256": self.sha256}


def row_records(rows: CallRows) -> np.ndarray:
    """Each row's bytes as the module says: (n, 8 + 2 * d * itemsize) uint8."""
    n = int(rows.positions.numel())
    positions = rows.positions.detach().cpu().numpy().astype("<i8", copy=False).view(np.uint8).reshape(n, 8)
    inputs = np.ascontiguousarray(rows.inputs.detach().cpu().numpy()).view(np.uint8).reshape(n, -1)
    outputs = np.ascontiguousarray(rows.outputs.detach().cpu().numpy()).view(np.uint8).reshape(n, -1)
    return np.concatenate([positions, inputs, outputs], axis=1)


class CallDigests:
    """The running digests of the requests decoding now, by the engine's request id."""

    def __init__(self) -> None:
        self._open: dict[int, dict[tuple[int, int], tuple[hashlib._Hash, int]]] = {}

    def fold(self, calls: dict[tuple[int, int], CallRows]) -> None:
        """Add one step's calls (``CallLog.take()`` after each step: (layer, expert) -> rows) to their requests'
        digests. A step's rows come segment by segment, each sequence's in position order (``decoding/step.py``,
        ``moe.dispatch.routed_samples``' ascending indices), so each sequence's rows are one contiguous run."""
        for key, rows in calls.items():
            records = row_records(rows)  # (n, bytes a row)
            sequences = rows.sequences.cpu().numpy()  # (n,)
            cuts = (np.flatnonzero(sequences[1:] != sequences[:-1]) + 1).tolist()
            for start, end in zip([0, *cuts], [*cuts, len(sequences)], strict=True):
                digests = self._open.setdefault(int(sequences[start]), {})
                hasher, count = digests.get(key) or (hashlib.sha256(), 0)
                hasher.update(records[start:end])
                digests[key] = (hasher, count + end - start)

    def finish(self, request: int) -> CallsDigest:
        """The digest of ``request``'s calls (forgotten here after)."""
        digests = self._open.pop(request, {})
        lines = "".join(f"{layer} {expert} {count} {hasher.hexdigest()}\n"
                        for (layer, expert), (hasher, count) in sorted(digests.items()))
        return CallsDigest(sum(count for _, count in digests.values()), len(digests),
                           hashlib.sha256(lines.encode("ascii")).hexdigest())

    def drop(self, request: int) -> None:
        """Forget a cancelled request's digests."""
        self._open.pop(request, None)
