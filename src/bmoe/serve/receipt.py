"""The receipt every response of bmoe serve carries (``"bmoe": {"receipt": ...}`` in a JSON body and in a stream's
last chunk; its id in the ``X-Bmoe-Receipt`` header; ``GET /bmoe/receipts/{id}`` while the server remembers it).

A receipt says what produced a generation, enough to regenerate it and to check a claim about it: the model (its
name and the CID of its weights), the seed and the sampling settings, digests of the prompt's and the completion's
token ids, and the digest of the expert calls (``call_digest.py``). In process no ledger is involved:
``verification`` says so, and ``ledger`` is null. When generation goes through the B-MoE protocol, the caller
that verified the calls fills ``ledger`` (chain height, transactions, the CIDs of the call records) and
``verification``; nothing else changes shape.

Must not know: HTTP, the engine, the model's tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.decoding.token_digest import tokens_sha256
from bmoe.serve.call_digest import CallsDigest

RECEIPT_VERSION = 1
IN_PROCESS = {"mode": "in-process", "verified": False,
              "note": "the experts ran in the server's process; no replica re-computed them, no ledger recorded them"}


def sampling_json(params: SamplingParams) -> dict[str, Any]:
    """The sampling settings a receipt records (the seed apart)."""
    return {"max_tokens": params.max_tokens, "temperature": params.temperature, "top_p": params.top_p,
            "top_k": params.top_k, "stop": list(params.stop), "eos_token_id": params.eos_token_id}


@dataclass(frozen=True)
class Receipt:
    """What produced one response."""

    id: str  # the response's id ("cmpl-..." / "chatcmpl-..."), also in the X-Bmoe-Receipt header
    model: dict[str, Any]  # served_model.ServedModel.identity: name, weights_cid, source
    params: SamplingParams
    prompt: list[int]
    completion: list[int]  # generated token ids (an end-of-sequence token included)
    finish_reason: str
    calls: CallsDigest
    verification: dict[str, Any] | None = None  # None: IN_PROCESS
    ledger: dict[str, Any] | None = None  # chain height, transactions, CIDs: filled by a verified caller

    def to_json(self) -> dict[str, Any]:
        return {"version": RECEIPT_VERSION, "id": self.id, "model": self.model, "seed": self.params.seed,
                "sampling": sampling_json(self.params),
                "prompt": {"tokens": len(self.prompt), "sha256": tokens_sha256(self.prompt)},
                "completion": {"tokens": len(self.completion), "sha256": tokens_sha256(self.completion),
                               "finish_reason": self.finish_reason},
                "calls": self.calls.to_json(), "verification": self.verification or IN_PROCESS,
                "ledger": self.ledger}
