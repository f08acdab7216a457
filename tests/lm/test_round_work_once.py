"""What a round computes once instead of several times gives the bytes and answers of computing it each time:
a transaction's encodings, a block's bytes, a small object's digest, the genesis's rules, a task's samples, the
forward mix; and what crossed a boundary (a block read from bytes) is still checked in full."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import re

import pytest
import torch

import bmoe.ledger.transactions as transactions
from bmoe.ledger.blocks import Block, block_from_bytes, block_to_bytes, block_to_dict, proposal_bytes
from bmoe.ledger.chain_check import check_block
from bmoe.ledger.encoding import canonical_json
from bmoe.ledger.errors import ChainIntegrityError
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.pow import seal_block
from bmoe.ledger.transactions import (
    Transaction,
    signing_message,
    tx_from_dict,
    tx_hash,
    tx_json,
    tx_payload_json,
    tx_signing_message,
    tx_to_dict,
)
from bmoe.moe.dispatch import combine
from bmoe.protocol.lm.layers import enter_layer, leave_layer, recorded_mix
from bmoe.storage.cid import CHUNK_SIZE, cid_of, sha256_hex_of
from bmoe.verify.assignment import Adaptive, Sampled, consecutive_runs, task_samples
from tests.lm.lm_runs import tiny_session
from tests.lm.tiny_models import random_tokens, tiny_model

ALICE = derive_identity(11, "alice")
PAYLOADS = [
    {},
    {"task_id": "train-000001-f0", "results": [{"expert": 3, "digest": "ab" * 32, "cid": "bafk"}]},
    {"nested": {"b": [1, 2.5, -0.0, 1e-300], "a": ("tuple", None, True)}, "text": "é\u2028\"\\"},
    {"big": 2**62, "float": 0.1 + 0.2, "list": [[[]], {}]},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_signed_transactions_encodings_are_its_fields_canonical_json(payload: dict[str, object]) -> None:
    tx = transactions.sign_transaction(ALICE, "activation", payload, 7)
    whole = tx_to_dict(tx)
    assert tx_payload_json(tx) == canonical_json(dict(payload))
    assert tx_signing_message(tx) == signing_message("activation", ALICE.address, 7, payload)
    assert tx_json(tx) == canonical_json(whole)
    assert tx_hash(tx) == hashlib.sha256(canonical_json(whole)).hexdigest()
    read = tx_from_dict(whole)  # a new object, encoded afresh: the same bytes
    assert (tx_signing_message(read), tx_json(read), tx_hash(read)) == (tx_signing_message(tx), tx_json(tx),
                                                                          tx_hash(tx))


def test_a_payload_that_is_not_canonical_json_is_refused_as_before() -> None:
    with pytest.raises(transactions.InvalidTransaction, match="payload is not canonical JSON"):
        transactions.sign_transaction(ALICE, "activation", {"x": float("nan")}, 0)
    with pytest.raises(transactions.InvalidTransaction, match=re.escape("non-string key 1 at .a")):
        transactions.sign_transaction(ALICE, "activation", {"a": {1: "x"}}, 0)


def _block(certificate: dict[str, object] | None = None) -> Block:
    txs = [transactions.sign_transaction(ALICE, "activation", payload, i) for i, payload in enumerate(PAYLOADS)]
    block = seal_block(ALICE, 3, "cd" * 32, txs, timestamp=5, difficulty=0, state_root="ab" * 32)
    return block if certificate is None else dataclasses.replace(block, certificate=certificate)


@pytest.mark.parametrize("certificate", [None, {"commits": [{"from": "v1", "sig": "00"}], "view": 0}])
def test_a_blocks_bytes_are_its_canonical_json(certificate: dict[str, object] | None) -> None:
    block = _block(certificate)
    wire = block_to_dict(block)
    assert block_to_bytes(block) == canonical_json(wire)
    assert proposal_bytes(block) == canonical_json({k: v for k, v in wire.items() if k != "certificate"})
    assert block_to_bytes(block_from_bytes(block_to_bytes(block))) == block_to_bytes(block)


def test_a_block_read_from_bytes_has_every_signature_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    block = _block()
    check_block(block, "cd" * 32)
    verified: list[str] = []
    real = transactions.verify_signature

    def counted(address: str, message: bytes, signature: str) -> bool:
        verified.append(address)
        return real(address, message, signature)

    monkeypatch.setattr(transactions, "verify_signature", counted)
    check_block(block, "cd" * 32)
    assert verified == []  # the same transaction objects: verified once in this process
    check_block(block_from_bytes(block_to_bytes(block)), "cd" * 32)
    assert len(verified) == len(PAYLOADS)  # new objects, read from bytes: every signature verified


def test_a_forged_signature_in_a_block_is_refused_even_beside_a_verified_original() -> None:
    block = _block()
    check_block(block, "cd" * 32)
    original = block.transactions[1]
    forged = Transaction(original.kind, original.sender, original.nonce, {**original.payload, "task_id": "other"},
                         original.signature)
    txs = list(block.transactions)
    txs[1] = forged
    resealed = seal_block(ALICE, 3, "cd" * 32, txs, timestamp=5, difficulty=0, state_root="ab" * 32)
    with pytest.raises(ChainIntegrityError, match="bad signature"):
        check_block(resealed, "cd" * 32)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 100_000, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE])
def test_an_objects_digest_is_its_sha256_whether_or_not_its_cid_is_remembered(size: int) -> None:
    data = os.urandom(size)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_hex_of(data) == expected  # its CID computed now
    cid_of(data)
    assert sha256_hex_of(data) == expected  # its CID remembered
    assert sha256_hex_of(bytearray(data)) == expected


def test_the_genesis_rules_are_built_once_per_genesis_and_again_for_a_copy() -> None:
    state = tiny_session().node.state
    assert state.rule is state.rule and state.comparison is state.comparison
    assert state.assignment is state.assignment and state.edges is state.edges
    copied = copy.deepcopy(state)
    assert copied.rule is not state.rule and copied.rule == state.rule
    assert (copied.comparison, copied.assignment, copied.edges) == (state.comparison, state.assignment, state.edges)


@pytest.mark.parametrize("train", [True, False])
def test_the_recorded_forward_mix_is_the_streams_made_once(train: bool) -> None:
    model = tiny_model()
    config = model.config
    h = model.embed(random_tokens(config, 2, 16, seed=4))  # (B, T, d)
    layer = enter_layer(model, 1, h, train)
    generator = torch.Generator().manual_seed(5)
    outputs = {slot: torch.randn(int(rows.numel()), config.hidden_size, generator=generator)
               for slot, rows in sorted(layer.groups.items())[1:]}  # the first slot's call not accepted
    recorded = recorded_mix(layer, outputs, train)
    alone = combine(layer.routing.experts, layer.routing.weights.detach(), outputs, layer.groups,
                    config.hidden_size)  # (n, d) as the validators aggregated on their own
    assert torch.equal(recorded, alone) and not recorded.requires_grad
    mixed = layer.mixed
    out = leave_layer(layer, outputs, train)
    assert layer.mixed is mixed  # reused, not made again
    assert out.requires_grad == train
    again = leave_layer(layer, {slot: out.clone() for slot, out in outputs.items()}, train)  # other tensors: remade
    assert layer.mixed is not mixed and torch.equal(again, out)


@pytest.mark.parametrize("policy", [Sampled(2), Adaptive(3, 2, 1)])
def test_a_tasks_samples_drawn_once_are_the_policys_draw(policy: Sampled | Adaptive) -> None:
    edges = tuple(derive_identity(i, f"edge{i}").address for i in range(6))
    activated, seed = (0, 2, 3, 5), hashlib.sha256(b"task").digest()
    for trusted in (frozenset(), frozenset(edges[:4]), frozenset(edges)):
        drawn = consecutive_runs(edges, activated, seed, lambda run, t=trusted: (
            policy.trusted_replicas if isinstance(policy, Adaptive) and all(e in t for e in run[:2])
            else policy.replicas))
        for expert in activated:
            assert policy.assigned(edges, expert, activated, seed, trusted) == drawn[expert]
    assert task_samples(policy, edges, activated, seed, frozenset()) is task_samples(policy, edges, activated, seed,
                                                                                     frozenset())
