"""The PBFT engine: every block carries a commit certificate of 2f + 1 genesis validators.

The genesis section is ``{"engine": "pbft", "validators": {name: address}, "f": f}``. A block's
certificate must verify against those validators (``consensus/pbft_rules.verify_certificate``) and
certify exactly this block's bytes (without the certificate) at this height.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.blocks import Block, proposal_bytes
from bmoe.ledger.encoding import sha256_hex
from bmoe.ledger.sealing.pow import is_int_in


@dataclass(frozen=True)
class PbftRules:
    members: Mapping[str, str]  # validator name -> address
    f: int

    def block_error(self, block: Block) -> str | None:
        from bmoe.consensus.pbft_rules import verify_certificate  # the certificate format is consensus's

        if block.certificate is None:
            return "no commit certificate"
        reason = verify_certificate(block.certificate, dict(self.members), self.f)
        if reason is not None:
            return f"bad PBFT commit certificate: {reason}"
        if block.certificate["height"] != block.header.height:
            return "bad PBFT commit certificate: certifies another height"
        if block.certificate["payload_hash"] != sha256_hex(proposal_bytes(block)):
            return "bad PBFT commit certificate: certifies other bytes than this block's"
        return None

    def describe(self, validators: int) -> str:
        return f"PBFT commit certificates of the {validators} genesis validators"


class PbftEngine:
    name = "pbft"

    def rules(self, section: Mapping[str, Any], validators: frozenset[str]) -> PbftRules:
        members = section.get("validators")
        if not isinstance(members, Mapping) or set(members.values()) != set(validators):
            raise ValueError("the PBFT validator set differs from the genesis validators")
        from bmoe.consensus.pbft_rules import max_faulty  # the fault threshold is consensus's

        f = section.get("f")
        if not is_int_in(f, 0, max_faulty(len(validators))):
            raise ValueError("PBFT f must be an int in [0, (n - 1) // 3]")
        assert isinstance(f, int)
        return PbftRules(dict(members), f)


PBFT_ENGINE = PbftEngine()
