"""The comparison rule in force: how two edges' results are judged "the same".

``exact``: equal digests of canonical bytes (safetensors, sorted keys). Honest edges agree bit for
bit only under stated conditions: the same torch build and CPU kernels, the same thread count
(``torch.set_num_threads``), and the same batch composition (the same samples in the same order,
which the recorded activation fixes). Under ``exact`` a disagreement between honest edges is not
tolerated silently: the round raises :class:`HonestDisagreement` (see protocol) when edges known to
be honest split, and the ledger records the split as a failed verification either way.
"""

from __future__ import annotations

COMPARISONS = ("exact",)


class HonestDisagreement(RuntimeError):
    """Honest replicas produced different bytes for the same expert, weights and input."""

    def __init__(self, task: str, expert: int, digests: dict[str, str]) -> None:
        listing = ", ".join(f"{edge[:8]}={digest[:12]}" for edge, digest in sorted(digests.items()))
        super().__init__(
            f"honest edges disagree on task {task} expert {expert} ({listing}); exact comparison needs "
            "the same torch build, the same thread count and the same batch composition on every edge"
        )
