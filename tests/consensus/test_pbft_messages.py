"""Hostile input to one PBFT replica: every bad message is refused under its reason, nothing raises."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bmoe.consensus.engine import Deliver, Propose, Send, Tick
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.pbft_messages import (
    COMMIT,
    DOMAIN,
    PRE_PREPARE,
    PREPARE,
    ViewChangeMessage,
    Vote,
    encode_checkpoint,
    encode_decided,
    encode_new_view,
    encode_status,
    encode_view_change,
    encode_vote,
    make_checkpoint,
    make_decided,
    make_new_view,
    make_status,
    make_view_change,
    parse_message,
    sign_vote,
)
from bmoe.consensus.wire import SignatureChecker
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.ledger.keys import derive_identity
from tests.consensus.helpers import SEED, honest_validate, identities

IDS = identities("r", 4)
VALIDATORS = {i.name: i.address for i in IDS}
CHECKER = SignatureChecker(DOMAIN)
PAYLOAD = b"block-0"
DIGEST = sha256_hex(PAYLOAD)


def replica() -> PbftReplica:
    return PbftReplica(IDS[1], VALIDATORS, honest_validate, PbftConfig(timeout=0.5))


def vote(kind: str, sender: int, *, view: int = 0, height: int = 1, digest: str = DIGEST) -> Vote:
    return sign_vote(CHECKER, IDS[sender], kind, view, height, digest)


def deliver(r: PbftReplica, message: bytes) -> list[object]:
    actions = r.handle(Deliver("somebody", message))
    assert isinstance(actions, list)
    return actions  # type: ignore[return-value]


def refused(r: PbftReplica, message: bytes, reason: str) -> None:
    before = Counter(r.stats.rejected)
    accepted = r.stats.accepted
    deliver(r, message)
    after = Counter(r.stats.rejected)
    assert after - before == Counter({reason: 1}), (reason, dict(after - before))
    assert r.stats.accepted == accepted


def test_each_reason_is_counted() -> None:
    r = replica()
    good_prepare = encode_vote(vote(PREPARE, 2))
    deliver(r, good_prepare)
    assert r.stats.accepted == 1
    refused(r, good_prepare, "replayed")
    refused(r, encode_vote(vote(PREPARE, 2, digest="1" * 64)), "equivocation")
    forged = Vote(PREPARE, "r3", 0, 1, DIGEST, CHECKER.sign(IDS[2], vote(PREPARE, 3).body()))  # r2 signs as r3
    refused(r, encode_vote(forged), "bad_signature")
    mallory = derive_identity(SEED, "mallory")
    refused(r, encode_vote(sign_vote(CHECKER, mallory, PREPARE, 0, 1, DIGEST)), "unknown_sender")
    refused(r, encode_vote(vote(PREPARE, 2, view=50)), "wrong_view")
    refused(r, encode_vote(vote(PREPARE, 3, height=1000)), "wrong_height")
    refused(r, encode_vote(vote(PRE_PREPARE, 2), PAYLOAD), "not_primary")
    refused(r, encode_vote(vote(PREPARE, 0)), "not_primary")  # the primary does not prepare
    refused(r, encode_vote(vote(PRE_PREPARE, 0), b"something else"), "bad_digest")
    refused(r, b"{" + b" " * (1 << 20) + b"}", "oversized")
    refused(r, encode_checkpoint(make_checkpoint(CHECKER, IDS[2], 3, DIGEST)), "wrong_height")
    st = encode_status(make_status(CHECKER, IDS[3], 0, 0, 1, False))
    deliver(r, st)
    refused(r, st, "replayed")


@pytest.mark.parametrize("message", [
    b"", b"\xff\xfe", b"null", b"[]", b"17", b'"text"', b"{}",
    b'{"body": {}, "sig": ""}',  # not canonical (spaces)
    canonical_json({"body": {"type": "prepare"}, "sig": "00"}),
    canonical_json({"body": {**vote(PREPARE, 2).body(), "view": True}, "sig": vote(PREPARE, 2).sig}),
    canonical_json({"body": {**vote(PREPARE, 2).body(), "height": 0}, "sig": vote(PREPARE, 2).sig}),
    canonical_json({"body": {**vote(PREPARE, 2).body(), "height": -1}, "sig": vote(PREPARE, 2).sig}),
    canonical_json({"body": {**vote(PREPARE, 2).body(), "digest": "XYZ"}, "sig": vote(PREPARE, 2).sig}),
    canonical_json({"body": {**vote(PREPARE, 2).body(), "type": "vote"}, "sig": vote(PREPARE, 2).sig}),
    canonical_json({"body": {**vote(PREPARE, 2).body(), "extra": 1}, "sig": vote(PREPARE, 2).sig}),
    canonical_json({**vote(PREPARE, 2).signed(), "payload": "AA=="}),  # a prepare carries no payload
    canonical_json({**vote(PRE_PREPARE, 0).signed(), "payload": "not base64!"}),
    canonical_json({**vote(PRE_PREPARE, 0).signed(), "payload": "YWJj\n"}),
    canonical_json({"body": vote(PREPARE, 2).body(), "sig": "ab" * 64 + "!"}),
    b"[" * 5000 + b"]" * 5000,
    b'{"body":{"height":' + b"9" * 5000 + b"}}",
])
def test_malformed_messages(message: bytes) -> None:
    refused(replica(), message, "malformed")


def test_view_change_and_new_view_must_justify_themselves() -> None:
    r = replica()
    fake_cert = {"view": 0, "height": 5, "payload_hash": DIGEST, "commits": [["r0", "ab" * 64]]}
    vc = make_view_change(CHECKER, IDS[2], 1, 5, fake_cert, None, None)
    refused(r, encode_view_change(vc), "bad_certificate")
    no_cert = make_view_change(CHECKER, IDS[2], 1, 5, None, None, None)
    refused(r, encode_view_change(no_cert), "bad_certificate")
    honest_vc = make_view_change(CHECKER, IDS[3], 1, 0, None, None, None)
    refused(r, encode_new_view(make_new_view(CHECKER, IDS[1], 1, [honest_vc], None, None)), "bad_new_view")
    refused(r, encode_new_view(make_new_view(CHECKER, IDS[2], 1, [honest_vc], None, None)), "not_primary")
    vcs = [make_view_change(CHECKER, IDS[i], 1, 0, None, None, None) for i in (0, 2, 3)]
    injected = sign_vote(CHECKER, IDS[1], PRE_PREPARE, 1, 1, DIGEST)  # a re-proposal nothing justifies
    refused(r, encode_new_view(make_new_view(CHECKER, IDS[1], 1, vcs, injected, PAYLOAD)), "bad_new_view")
    forged = {"view": 0, "height": 1, "payload_hash": DIGEST,
              "commits": [[f"r{i}", CHECKER.sign(IDS[i], vote(PREPARE, i).body())] for i in range(3)]}
    refused(r, encode_decided(make_decided(CHECKER, IDS[2], [forged], [PAYLOAD], False)), "bad_certificate")
    genuine = {"view": 0, "height": 1, "payload_hash": DIGEST,
               "commits": [[f"r{i}", vote(COMMIT, i).sig] for i in range(3)]}
    refused(r, encode_decided(make_decided(CHECKER, IDS[2], [genuine], [b"other"], False)), "bad_digest")
    deliver(r, encode_decided(make_decided(CHECKER, IDS[2], [genuine], [PAYLOAD], False)))
    assert r.executed == 1 and r.decided[1].payload == PAYLOAD  # a valid certificate is enough to catch up


def test_votes_for_an_abandoned_view_are_refused() -> None:
    r = replica()
    r.handle(Propose(b"waiting"))
    r.handle(Tick(10.0))  # first expiry: ask peers
    out = r.handle(Tick(20.0))  # second: change view
    assert r.view == 1 and not r.active
    sent = [parse_message(a.message, VALIDATORS, 1 << 20, CHECKER) for a in out if isinstance(a, Send)]
    assert any(isinstance(m, ViewChangeMessage) and m.view == 1 for m in sent)
    refused(r, encode_vote(vote(PREPARE, 2)), "wrong_view")


def test_fuzz_random_and_mutated_bytes_never_raise() -> None:
    rng = random.Random(SEED)
    r = replica()
    pp = encode_vote(vote(PRE_PREPARE, 0), PAYLOAD)
    valid = [
        pp, encode_vote(vote(PREPARE, 2)), encode_vote(vote(COMMIT, 3)),
        encode_checkpoint(make_checkpoint(CHECKER, IDS[2], 8, DIGEST)),
        encode_view_change(make_view_change(CHECKER, IDS[3], 1, 0, None, None, None)),
        encode_status(make_status(CHECKER, IDS[0], 0, 0, 1, False)),
    ]
    for _ in range(3000):
        base = rng.choice(valid)
        kind = rng.randrange(5)
        if kind == 0:
            message = rng.randbytes(rng.randrange(200))
        elif kind == 1:
            i = rng.randrange(len(base))
            message = base[:i] + bytes([rng.randrange(256)]) + base[i + 1:]
        elif kind == 2:
            message = base[: rng.randrange(len(base))]
        elif kind == 3:
            i = rng.randrange(len(base))
            message = base[:i] + rng.randbytes(rng.randrange(1, 8)) + base[i:]
        else:
            a, b = rng.choice(valid), rng.choice(valid)
            message = a[: rng.randrange(len(a))] + b[rng.randrange(len(b)):]
        deliver(r, message)
    assert r.stats.total_rejected >= 2900
    assert r.executed == 0  # no amount of garbage forges a quorum
    for message in valid:  # the replica still works
        deliver(r, message)
