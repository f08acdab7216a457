"""The ledger's rules for a generation chunk: its evidence must hold, or the transaction is refused."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.keys import Identity, derive_identity
from bmoe.ledger.state import LedgerState, apply_transaction, begin_block
from bmoe.ledger.transactions import sign_transaction
from bmoe.run.lm.artifacts import chain_states
from tests.generation.helpers import generate, liar, model, session


@dataclass(frozen=True)
class Disputed:
    """A chunk payload holding a dispute (edge 4 lied), the ledger's state before it, and its validator."""

    payload: dict[str, Any]
    before: LedgerState
    validator: Identity


@pytest.fixture(scope="module")
def disputed(tmp_path_factory: pytest.TempPathFactory) -> Disputed:
    run_dir = tmp_path_factory.mktemp("generation")
    s = session(model(), {4: liar(1, 2)}, run_dir=run_dir)
    generate(s)
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        blocks = list(chain.iter_blocks())
    states = list(chain_states(run_dir / "chain.sqlite"))
    height = next(b.header.height for b in blocks[1:] if b.transactions[0].payload["disputes"])
    return Disputed(dict(blocks[height].transactions[0].payload), states[height - 1], s.validator)


def _check(disputed: Disputed, payload: dict[str, Any], signer: Identity | None = None) -> str | None:
    """Why ``payload`` would be refused in place of the disputed chunk, or None."""
    identity = signer or disputed.validator
    working = begin_block(disputed.before)
    tx = sign_transaction(identity, "generation_chunk", payload, working.next_nonce(identity.address))
    try:
        apply_transaction(working, tx)
    except InvalidTransaction as err:
        return err.reason
    return None


def _copy(disputed: Disputed) -> dict[str, Any]:
    return copy.deepcopy(disputed.payload)


def test_the_recorded_chunk_applies(disputed: Disputed) -> None:
    assert _check(disputed, _copy(disputed)) is None


def test_a_chunk_out_of_order_is_refused(disputed: Disputed) -> None:
    payload = {**_copy(disputed), "chunk": disputed.payload["chunk"] + 1}
    assert "expected" in str(_check(disputed, payload))


def test_evidence_signed_for_another_chunk_does_not_verify(disputed: Disputed) -> None:
    payload = {**_copy(disputed), "chunk": disputed.payload["chunk"] + 1}
    state = copy.deepcopy(disputed.before)
    state.generations["gen-0"] = payload["chunk"]  # as if it were the next chunk's turn
    assert "signature does not verify" in str(_check(Disputed(payload, state, disputed.validator), payload))


def test_a_forged_commitment_signature_is_refused(disputed: Disputed) -> None:
    forged = _copy(disputed)
    commitments = forged["disputes"][0]["commitments"]
    edge = sorted(commitments)[0]
    signature = commitments[edge]["signature"]
    commitments[edge]["signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert "signature does not verify" in str(_check(disputed, forged))


def test_a_record_against_an_edge_that_agreed_is_refused(disputed: Disputed) -> None:
    forged = _copy(disputed)
    dispute = forged["disputes"][0]
    agreed = next(e for e, c in sorted(dispute["commitments"].items()) if c["outputs"] == dispute["accepted"])
    forged["records_against"].append({"edge": agreed, "slot": dispute["slot"], "reason": "dissent", "rows": [[0, 3]]})
    assert "committed the accepted output" in str(_check(disputed, forged))


def test_an_accepted_output_without_a_quorum_is_refused(disputed: Disputed) -> None:
    forged = _copy(disputed)
    dispute = forged["disputes"][0]
    liar_cid = next(c["outputs"] for c in dispute["commitments"].values() if c["outputs"] != dispute["accepted"])
    dispute["accepted"] = liar_cid  # the liar's answer, which one commitment supports
    forged["records_against"] = []
    assert "fewer than the quorum" in str(_check(disputed, forged))


def test_only_a_validator_records_chunks(disputed: Disputed) -> None:
    outsider = derive_identity(99, "outsider")
    assert "not a validator" in str(_check(disputed, _copy(disputed), outsider))


def test_an_unknown_field_is_refused_by_the_schema(disputed: Disputed) -> None:
    assert "unknown ['tokens_per_second']" in str(_check(disputed, {**_copy(disputed), "tokens_per_second": 3}))
