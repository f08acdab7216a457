"""An edge's expert holdings under a placement: the weights of the slots placed on it, fetched from the store by CID.

:class:`PlacedExperts` is an ``ExpertCaller`` (``lm/decoding/expert_calls.py``) that holds only the slots a
placement (``ledger/placement.py``) gave its edge. :meth:`PlacedExperts.hold` takes a new placement's slots: each
expert object is fetched by its CID (the genesis names every slot's) unless it is already cached, and the bytes
fetched are counted. The cache is by CID, so a slot placed again (or another slot with the same weights) is never
fetched twice; objects no longer held are evicted only when the cache would exceed the memory the edge declared.
A call of a slot the edge does not hold is refused with :class:`NotHeld`, an ``EdgeGone``: no answer, not a crash.

Each expert runs as the model's own does (``SwiGLUExpert`` on padded rows, ``lm/decoding/rows.py``), so an honest
holder's answers have the same bits as any other holder's.

Must not know: the ledger's rules, the placement rule, the engine.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from bmoe.lm.decoding.rows import stable_expert
from bmoe.lm.model import SwiGLUExpert
from bmoe.protocol.generation.edges import EdgeGone
from bmoe.storage import BlobStore, deserialize_tensors


class NotHeld(EdgeGone):
    """An edge was asked for a slot its placement does not give it: it refuses (no answer)."""

    def __init__(self, address: str, slot: int) -> None:
        super().__init__(address, f"edge {address[:12]} does not hold slot {slot}")
        self.slot = slot


class PlacedExperts:
    """The experts of one edge's placed slots; ``memory`` bounds what its cache keeps."""

    def __init__(self, address: str, hidden_size: int, intermediate_size: int, experts_per_layer: int,
                 memory: int) -> None:
        self.address = address
        self.shape = (hidden_size, intermediate_size)
        self.experts_per_layer = experts_per_layer
        self.memory = memory
        self.held: dict[int, str] = {}  # slot -> CID of its expert object
        self.cache: dict[str, tuple[SwiGLUExpert, int]] = {}  # CID -> (the expert, its object's bytes)
        self.bytes_fetched = 0
        self.fetches = 0

    def hold(self, store: BlobStore, slots: Mapping[int, str]) -> int:
        """Hold ``slots`` (slot -> CID) from now on, fetching what the cache lacks; the bytes this fetched."""
        fetched = 0
        for cid in sorted(set(slots.values()) - set(self.cache)):
            data = store.get(cid)
            tensors, _ = deserialize_tensors(data)
            with torch.device("meta"):  # no initial weights drawn (the global random state stays untouched)
                expert = SwiGLUExpert(*self.shape)
            expert.load_state_dict(tensors, assign=True)
            self.cache[cid] = (expert.eval(), len(data))
            fetched += len(data)
        self.held = dict(slots)
        self._evict()
        self.bytes_fetched += fetched
        self.fetches += fetched > 0
        return fetched

    def held_bytes(self) -> int:
        return sum(self.cache[cid][1] for cid in set(self.held.values()))

    def _evict(self) -> None:
        """Drop cached objects no longer held while the cache exceeds the declared memory (oldest first)."""
        held = set(self.held.values())
        for cid in [c for c in self.cache if c not in held]:
            if sum(size for _, size in self.cache.values()) <= self.memory:
                return
            del self.cache[cid]

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        outputs = {}
        for expert, rows in routed.items():
            slot = layer * self.experts_per_layer + expert
            cid = self.held.get(slot)
            if cid is None:
                raise NotHeld(self.address, slot)
            with torch.no_grad():
                outputs[expert] = stable_expert(self.cache[cid][0], rows)  # (n_e, d)
        return outputs
