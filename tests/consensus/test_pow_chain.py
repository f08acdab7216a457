"""PoW chain rules on one miner fed blocks by hand: fork choice, reorgs, orphans, finality, bad blocks."""

from __future__ import annotations

import random
from collections import Counter

from bmoe.consensus.engine import Committed, Deliver, Send
from bmoe.experiments.pow_network.blocks import Block, Header, encode_block, encode_get, sign_block, verify_block_proof
from bmoe.experiments.pow_network.miner import PowConfig, PowMiner
from bmoe.experiments.pow_network.reputation import ReputationRule
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.ledger.keys import derive_identity
from tests.consensus.helpers import SEED, TAMPER_MARK, honest_validate, identities, mine_block

IDS = identities("m", 3)
MINERS = {i.name: i.address for i in IDS}
D = 6  # cheap blocks for hand-built chains


def observer(confirmations: int = 2, rule: ReputationRule | None = None) -> PowMiner:
    """m0 with no hash power: it only judges what it receives."""
    config = PowConfig(difficulty=D, confirmations=confirmations, reputation=rule or ReputationRule())
    return PowMiner(IDS[0], MINERS, honest_validate, share=0.0, config=config)


def branch(miner: PowMiner, who: int, length: int, parent: str | None = None, start: int = 1,
           tag: str = "x") -> list[Block]:
    blocks, prev = [], parent or miner.genesis.hash
    for h in range(start, start + length):
        block = mine_block(IDS[who], prev, h, f"{tag}-{h}".encode(), D)
        blocks.append(block)
        prev = block.hash
    return blocks


def feed(miner: PowMiner, *blocks: Block, sender: str = "m1") -> list[object]:
    out: list[object] = []
    for block in blocks:
        out += miner.handle(Deliver(sender, encode_block(block)))
    return out


def test_most_work_wins_and_ties_go_to_the_first_seen() -> None:
    m = observer()
    a = branch(m, 1, 2, tag="a")
    b = branch(m, 2, 3, tag="b")
    feed(m, *a)
    assert m.tip.hash == a[-1].hash
    feed(m, *b[:2])  # equal work: keep the first seen
    assert m.tip.hash == a[-1].hash
    out = feed(m, b[2])  # more work: reorganise
    assert m.tip.hash == b[-1].hash and m.stats.events["reorg"] == 1
    committed = [x for x in out if isinstance(x, Committed)]
    assert [(c.height, c.payload) for c in committed] == [(1, b"b-1")]  # k = 2: height 1 is final now
    assert not m.finality_violations


def test_a_reorg_below_the_confirmation_depth_is_recorded_and_reported_again() -> None:
    m = observer(confirmations=1)
    a = branch(m, 1, 2, tag="a")
    b = branch(m, 2, 3, tag="b")
    first = [x for x in feed(m, *a) if isinstance(x, Committed)]
    assert [c.payload for c in first] == [b"a-1"]
    again = [x for x in feed(m, *b) if isinstance(x, Committed)]
    assert [(c.height, c.payload) for c in again] == [(1, b"b-1"), (2, b"b-2")]
    assert [(h, old, new) for h, old, new in m.finality_violations] == [(1, a[0].hash, b[0].hash)]


def test_most_work_not_longest_chain() -> None:
    """With reputation, a trusted miner's blocks are easier and weigh less: three of them lose to one hard block."""
    rule = ReputationRule(enabled=True, min_difficulty=1, initial=(("m1", 15),))
    m = observer(rule=rule)
    easy, prev = [], m.genesis.hash
    for h in (1, 2, 3):
        difficulty = m.difficulty_for("m1", m.nodes.get(prev, m.genesis))
        block = mine_block(IDS[1], prev, h, f"e-{h}".encode(), difficulty)
        feed(m, block)
        easy.append(block)
        prev = block.hash
    assert m.tip.height == 3 and m.tip.total_work == 3 * 2 ** (D - 4)
    hard = mine_block(IDS[2], m.genesis.hash, 1, b"h-1", D)
    feed(m, hard)
    assert m.tip.hash == hard.hash and m.tip.height == 1


def test_orphans_wait_for_their_parent_and_are_fetched() -> None:
    m = observer()
    a = branch(m, 1, 3)
    out = feed(m, a[2], sender="m2")
    assert m.tip is m.genesis and m.stats.events["orphan"] == 1
    assert Send("m2", encode_get(a[1].hash)) in out  # asks the sender for the missing parent
    feed(m, a[1], sender="m2")
    feed(m, a[0], sender="m2")
    assert m.tip.hash == a[2].hash and not m.orphans


def test_get_is_answered_with_the_block() -> None:
    m = observer()
    a = branch(m, 1, 1)
    feed(m, *a)
    assert m.handle(Deliver("m2", encode_get(a[0].hash))) == [Send("m2", encode_block(a[0]))]
    m.handle(Deliver("m2", encode_get("0" * 64)))
    assert m.stats.events["get_miss"] == 1
    before = m.stats.rejected["unknown_sender"]
    m.handle(Deliver("stranger", encode_get(a[0].hash)))
    assert m.stats.rejected["unknown_sender"] == before + 1


def refused(m: PowMiner, block: Block | bytes, reason: str) -> None:
    before = Counter(m.stats.rejected)
    tip = m.tip
    m.handle(Deliver("m1", block if isinstance(block, bytes) else encode_block(block)))
    assert Counter(m.stats.rejected) - before == Counter({reason: 1}), reason
    assert m.tip is tip


def test_bad_blocks_are_refused_by_reason() -> None:
    m = observer()
    g = m.genesis.hash
    bad = mine_block(IDS[1], g, 1, b"x" + TAMPER_MARK, D)
    refused(m, bad, "invalid_payload")
    refused(m, mine_block(IDS[1], bad.hash, 2, b"child", D), "invalid_parent")
    refused(m, bad, "replayed")
    good = mine_block(IDS[1], g, 1, b"ok", D)
    feed(m, good)
    refused(m, good, "replayed")
    refused(m, mine_block(IDS[1], g, 1, b"easy", D - 1), "wrong_difficulty")
    refused(m, mine_block(IDS[1], good.hash, 5, b"jump", D), "wrong_height")
    stranger = derive_identity(SEED, "stranger")
    refused(m, mine_block(stranger, g, 1, b"who", D), "unknown_sender")
    forged = mine_block(IDS[2], g, 1, b"forged", D)
    refused(m, Block(forged.header, IDS[2].sign(b"other"), forged.payload), "bad_signature")
    swapped = mine_block(IDS[1], g, 1, b"p", D)
    refused(m, Block(swapped.header, swapped.sig, b"q"), "bad_digest")
    claim = Header(1, g, sha256_hex(b"lazy"), "m1", 0, 20)  # claims 20 bits, does no work
    refused(m, sign_block(IDS[1], claim, b"lazy"), "insufficient_work")
    refused(m, b"{" + b" " * (1 << 20) + b"}", "oversized")
    for junk in (b"", b"[]", b"{}", canonical_json({"kind": "block"}), canonical_json({"kind": "get", "hash": 1})):
        refused(m, junk, "malformed")


def test_committed_proofs_verify_and_tampered_ones_do_not() -> None:
    m = observer(confirmations=1)
    out = feed(m, *branch(m, 1, 2))
    proof = next(x for x in out if isinstance(x, Committed)).proof
    assert verify_block_proof(proof, MINERS) is None
    for key, value in (("hash", "0" * 64), ("work", 1), ("signature", "ab" * 64)):
        assert verify_block_proof({**proof, key: value}, MINERS) is not None, key
    header = {**proof["header"], "nonce": proof["header"]["nonce"] + 1}
    assert verify_block_proof({**proof, "header": header}, MINERS) is not None
    assert verify_block_proof(proof, {"m0": MINERS["m0"]}) is not None
    assert verify_block_proof("junk", MINERS) is not None


def test_fuzz_never_raises() -> None:
    rng = random.Random(SEED)
    m = observer()
    valid = [encode_block(b) for b in branch(m, 1, 3)] + [encode_get("1" * 64)]
    for _ in range(2000):
        base = rng.choice(valid)
        i = rng.randrange(len(base))
        message = rng.choice([rng.randbytes(rng.randrange(100)), base[:i],
                              base[:i] + bytes([rng.randrange(256)]) + base[i + 1:]])
        assert isinstance(m.handle(Deliver("m1", message)), list)
    assert m.stats.total_rejected > 1500
    assert m.tip.height <= 3  # nothing but the three genuine blocks could ever connect
