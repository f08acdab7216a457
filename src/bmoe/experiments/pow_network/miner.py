"""A PoW miner as a sans-IO state machine: competing miners, most-work fork choice, k-deep finality.

Owns one miner's view: the block tree it has accepted, orphans waiting for their parent, the best
tip (most accumulated work ``sum(2**difficulty)``, ties to the first seen), its own mining (on each
``Tick`` it spends ``rate * share * elapsed`` real SHA-256 attempts on a header extending its best
tip), the payloads waiting to be mined, and which heights it has reported final.

Finality: height ``h`` is reported (``Committed``) once the best chain has ``confirmations`` (``k``)
blocks' worth of work on top of it, ``k * 2**difficulty`` (exactly ``k`` blocks in plain PoW; with
reputation-aided mining easier blocks count for less). Should the best chain later change a reported
height (only an attacker with more hash power than the honest miners can do this, the paper's 50 %
threshold), the miner records a finality violation and reports the new block at that height again:
history was rewritten.

Optional reputation-aided mining (``ReputationRule.enabled``): the difficulty a miner's block must
meet depends on its reputation at the parent block; honest miners put evidence of invalid blocks
they received into their next block, which costs the cheat reputation (``reputation``).

Must not know: what payloads mean (``validate``), the network, the clock (only ``Tick``), PBFT.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from bmoe.consensus.engine import (
    Action,
    Committed,
    Deliver,
    Event,
    Propose,
    Reason,
    Rejected,
    ReplicaStats,
    Send,
    SetTimer,
    Tick,
    Validate,
    judge,
)
from bmoe.experiments.pow_network.blocks import (
    MAX_DIFFICULTY,
    Block,
    GetBlock,
    Header,
    NonceSearch,
    block_proof,
    check_block,
    encode_block,
    encode_get,
    parse_message,
    sign_block,
    work,
)
from bmoe.experiments.pow_network.reputation import ReputationRule, effective_difficulty, next_reputation
from bmoe.ledger.encoding import sha256_hex
from bmoe.ledger.keys import Identity, is_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PowConfig:
    """Settings of a PoW network; every miner must use the same ones."""

    difficulty: int = 10  # base leading zero bits; tests keep 8-12 so blocks cost ~1e3 hashes
    rate: float = 2000.0  # hash attempts per host-clock second for a miner with share 1.0
    tick_interval: float = 0.05  # how often a miner wakes to hash (host clock)
    confirmations: int = 3  # k: a block is final with k base-difficulty blocks' worth of work on top of it
    max_message_bytes: int = 1 << 20
    mine_empty: bool = True  # with no payload waiting, seal empty blocks (keeps confirmations coming)
    max_orphans: int = 256
    max_tick_gap: float = 1.0  # elapsed time credited per tick at most (a restart brings no windfall)
    max_invalid: int = 4096  # remembered invalid block hashes
    reputation: ReputationRule = field(default_factory=ReputationRule)
    chain_id: str = "bmoe-pow"

    def __post_init__(self) -> None:
        if isinstance(self.difficulty, bool) or not isinstance(self.difficulty, int) \
                or not 0 <= self.difficulty <= MAX_DIFFICULTY:
            raise ValueError(f"PowConfig.difficulty must be in [0, {MAX_DIFFICULTY}], got {self.difficulty!r}")
        for name in ("rate", "tick_interval", "max_tick_gap"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0 or not math.isfinite(value):
                raise ValueError(f"PowConfig.{name} must be > 0, got {value!r}")
        for name in ("confirmations", "max_orphans", "max_invalid"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PowConfig.{name} must be an integer >= 1, got {value!r}")

    @property
    def genesis_hash(self) -> str:
        return sha256_hex(b"bmoe-pow-genesis|" + self.chain_id.encode())


@dataclass(eq=False)
class BlockNode:
    block: Block | None  # None for genesis
    hash: str
    height: int
    parent: BlockNode | None
    total_work: int
    arrival: int  # order first seen: the tie-break of fork choice
    reputation: dict[str, int]

    def ancestor(self, height: int) -> BlockNode:
        node = self
        while node.height > height:
            assert node.parent is not None
            node = node.parent
        return node


@dataclass
class _Template:
    search: NonceSearch
    payload: bytes
    evidence: tuple[Block, ...]


class PowMiner:
    """One miner with ``share`` of the network's hash rate. ``handle(event) -> actions``."""

    def __init__(
        self,
        identity: Identity,
        miners: Mapping[str, str],
        validate: Validate,
        share: float = 1.0,
        config: PowConfig | None = None,
    ) -> None:
        for name, address in miners.items():
            if not isinstance(name, str) or not is_address(address):
                raise ValueError(f"bad miner entry {name!r}: {address!r}")
        if miners.get(identity.name) != identity.address:
            raise ValueError(f"{identity.name!r} is not an enrolled miner with this key")
        if not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"share must be in [0, 1], got {share!r}")
        self.identity = identity
        self.miners = dict(miners)
        self.validate = validate
        self.share = float(share)
        self.config = config or PowConfig()
        self.rule = self.config.reputation
        self._stats = ReplicaStats()
        self.genesis = BlockNode(None, self.config.genesis_hash, 0, None, 0, 0, self.rule.genesis(self.miners))
        self.nodes: dict[str, BlockNode] = {self.genesis.hash: self.genesis}
        self.tip = self.genesis
        self.orphans: OrderedDict[str, Block] = OrderedDict()
        self.invalid: OrderedDict[str, None] = OrderedDict()
        self.pending: dict[str, bytes] = {}
        self.confirmed_payloads: set[str] = set()
        self.evidence_pool: dict[str, Block] = {}
        self.reported: dict[int, str] = {}
        self.finality_violations: list[tuple[int, str, str]] = []  # (height, reported hash, new hash)
        self.now = 0.0
        self.next_tick: float | None = None
        self.last_mine: float | None = None
        self.carry = 0.0
        self.template: _Template | None = None
        self._arrivals = itertools.count(1)
        self._fresh: list[BlockNode] = []
        self._out: list[Action] = []

    # -- the ConsensusReplica protocol ---------------------------------------------------------

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def stats(self) -> ReplicaStats:
        return self._stats

    def handle(self, event: Event) -> list[Action]:
        self._out = []
        try:
            if isinstance(event, Tick):
                self._on_tick(event.now)
            elif isinstance(event, Propose):
                self._on_propose(event.payload)
            elif isinstance(event, Deliver):
                msg = parse_message(event.message, self.config.max_message_bytes)
                if isinstance(msg, GetBlock):
                    self._on_get(msg, event.sender)
                else:
                    self._on_block(msg, event.sender)
                self._stats.accepted += 1
            else:
                raise Rejected(Reason.MALFORMED, f"unknown event {type(event).__name__}")
        except Rejected as rejection:
            self._stats.reject(rejection)
        self._update_tip()
        out, self._out = self._out, []
        return out

    # -- queries -------------------------------------------------------------------------------

    def best_chain(self) -> list[BlockNode]:
        """Genesis excluded, oldest first."""
        chain, node = [], self.tip
        while node.parent is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]

    def difficulty_for(self, miner: str, parent: BlockNode | None = None) -> int:
        """The difficulty a block by ``miner`` on ``parent`` (default: the tip) must have."""
        parent = parent or self.tip
        return effective_difficulty(self.config.difficulty, parent.reputation.get(miner, 0), self.rule)

    @property
    def last_reported(self) -> int:
        return max(self.reported, default=0)

    # -- inputs --------------------------------------------------------------------------------

    def _on_propose(self, payload: bytes) -> None:
        if not isinstance(payload, bytes):
            raise Rejected(Reason.MALFORMED, "payload must be bytes")
        if len(payload) * 4 // 3 + 8192 > self.config.max_message_bytes:
            raise Rejected(Reason.OVERSIZED, f"payload of {len(payload)} bytes")
        digest = sha256_hex(payload)
        if digest in self.confirmed_payloads:
            self._stats.events["duplicate_request"] += 1
            return
        self.pending.setdefault(digest, payload)

    def _on_tick(self, now: float) -> None:
        self.now = max(self.now, now)
        self._mine()
        if self.next_tick is None or self.now >= self.next_tick:
            self.next_tick = self.now + self.config.tick_interval
            self._out.append(SetTimer(self.next_tick))

    def _on_get(self, request: GetBlock, sender: str) -> None:
        if sender not in self.miners:
            raise Rejected(Reason.UNKNOWN_SENDER, f"get from {sender!r}")
        node = self.nodes.get(request.hash)
        if node is None or node.block is None:
            self._stats.events["get_miss"] += 1
            return
        self._send(sender, encode_block(node.block))

    def _on_block(self, block: Block, sender: str) -> None:
        digest = block.hash
        if digest in self.nodes or digest in self.orphans or digest in self.invalid:
            raise Rejected(Reason.REPLAYED, f"block {digest[:12]} already seen")
        check_block(block, self.miners)
        floor = min(self.rule.min_difficulty, self.config.difficulty) if self.rule.enabled else self.config.difficulty
        if block.header.difficulty < floor:
            raise Rejected(Reason.WRONG_DIFFICULTY, f"difficulty {block.header.difficulty} < floor {floor}")
        parent = self.nodes.get(block.header.prev)
        if parent is None:
            if block.header.prev in self.invalid:
                self._mark_invalid(digest)
                raise Rejected(Reason.INVALID_PARENT, f"block {digest[:12]} extends an invalid block")
            self._add_orphan(block)
            if sender in self.miners:
                self._send(sender, encode_get(block.header.prev))
            return
        self._connect(block, parent)
        self._connect_orphans(digest)

    # -- the block tree ------------------------------------------------------------------------

    def _connect(self, block: Block, parent: BlockNode, own: bool = False) -> BlockNode:
        header, digest = block.header, block.hash
        if header.height != parent.height + 1:
            raise Rejected(Reason.WRONG_HEIGHT, f"block {digest[:12]} at {header.height}, parent at {parent.height}")
        required = self.difficulty_for(header.miner, parent)
        if header.difficulty != required:
            raise Rejected(Reason.WRONG_DIFFICULTY, f"{header.miner} must mine at {required}, block says "
                                                    f"{header.difficulty}")
        accused = self._check_evidence(block, parent)
        if not own:
            reason = judge(self.validate, header.height, block.payload)
            if reason is not None:
                self._mark_invalid(digest)
                if self.rule.enabled:
                    self.evidence_pool[digest] = Block(header, block.sig, block.payload)
                log.info("%s: invalid block %s by %s at %d: %s", self.name, digest[:12], header.miner,
                         header.height, reason)
                raise Rejected(Reason.INVALID_PAYLOAD, reason)
        node = BlockNode(block, digest, header.height, parent, parent.total_work + work(header.difficulty),
                         next(self._arrivals), next_reputation(parent.reputation, header.miner, accused, self.rule))
        self.nodes[digest] = node
        self._fresh.append(node)
        return node

    def _connect_orphans(self, parent_hash: str) -> None:
        waiting = [self.nodes[parent_hash]]
        while waiting:
            parent = waiting.pop()
            for child in [b for b in self.orphans.values() if b.header.prev == parent.hash]:
                del self.orphans[child.hash]
                try:
                    waiting.append(self._connect(child, parent))
                except Rejected as rejection:
                    self._stats.reject(rejection)
                    self._mark_invalid(child.hash)

    def _add_orphan(self, block: Block) -> None:
        self.orphans[block.hash] = block
        self._stats.events["orphan"] += 1
        while len(self.orphans) > self.config.max_orphans:
            self.orphans.popitem(last=False)
            self._stats.events["orphan_evicted"] += 1

    def _mark_invalid(self, digest: str) -> None:
        self.invalid[digest] = None
        while len(self.invalid) > self.config.max_invalid:
            self.invalid.popitem(last=False)

    def _check_evidence(self, block: Block, parent: BlockNode) -> list[str]:
        """Miners the block proves guilty: each evidence block is signed, worked and really invalid."""
        evidence = block.evidence
        if not evidence:
            return []
        rule = self.rule
        if not rule.enabled or len(evidence) > rule.max_evidence:
            raise Rejected(Reason.BAD_EVIDENCE, "evidence not allowed here or too much of it")
        if len({e.hash for e in evidence}) != len(evidence):
            raise Rejected(Reason.BAD_EVIDENCE, "the same evidence twice")
        earlier = self._evidence_near(parent)
        accused = []
        for item in evidence:
            if item.hash in earlier:
                raise Rejected(Reason.BAD_EVIDENCE, f"evidence {item.hash[:12]} already in the chain")
            if abs(item.header.height - block.header.height) > rule.evidence_window:
                raise Rejected(Reason.BAD_EVIDENCE, f"evidence {item.hash[:12]} is too far from this height")
            try:
                check_block(item, self.miners)
            except Rejected as rejection:
                raise Rejected(Reason.BAD_EVIDENCE, f"evidence block: {rejection.detail}") from None
            if judge(self.validate, item.header.height, item.payload) is None:
                raise Rejected(Reason.BAD_EVIDENCE, f"evidence block {item.hash[:12]} is valid")
            accused.append(item.header.miner)
        return accused

    def _evidence_near(self, parent: BlockNode) -> set[str]:
        """Evidence hashes already in the chain ending at ``parent``, as far back as a duplicate could be."""
        seen: set[str] = set()
        node: BlockNode | None = parent
        for _ in range(2 * self.rule.evidence_window + 1):
            if node is None or node.block is None:
                break
            seen.update(node.block.header.evidence)
            node = node.parent
        return seen

    # -- fork choice and finality --------------------------------------------------------------

    def _update_tip(self) -> None:
        fresh, self._fresh = self._fresh, []
        best = self.tip
        for node in fresh:  # in arrival order: strictly more work wins, so ties go to the first seen
            if node.total_work > best.total_work:
                best = node
        if best is self.tip:
            if fresh:
                self._stats.events["side_block"] += sum(1 for n in fresh if n is not best)
            return
        old = self.tip
        if best.height < old.height or best.ancestor(old.height) is not old:
            self._stats.events["reorg"] += 1
        self.tip = best
        self.template = None
        self._report()

    def _report(self) -> None:
        """Report every height that is now ``k`` deep; detect reported heights the new chain rewrote."""
        final = self._final_height()
        path: dict[int, BlockNode] = {}
        node: BlockNode | None = self.tip
        rewritten: list[int] = []
        while node is not None and node.parent is not None:
            reported = self.reported.get(node.height)
            if reported == node.hash:
                break
            if reported is not None:
                rewritten.append(node.height)
                self.finality_violations.append((node.height, reported, node.hash))
                self._stats.events["finality_violation"] += 1
                log.warning("%s: reported height %d rewritten (%s -> %s)", self.name, node.height, reported[:12],
                            node.hash[:12])
                old = self.nodes.get(reported)
                if old is not None and old.block is not None and old.block.payload:
                    self.pending.setdefault(old.block.header.payload_hash, old.block.payload)
                    self.confirmed_payloads.discard(old.block.header.payload_hash)
            path[node.height] = node
            node = node.parent
        if rewritten:
            for height in [h for h in self.reported if h >= min(rewritten)]:
                del self.reported[height]
        for height in range(self.last_reported + 1, final + 1):
            node = path[height]
            assert node.block is not None
            self.reported[height] = node.hash
            digest = node.block.header.payload_hash
            self.pending.pop(digest, None)
            self.confirmed_payloads.add(digest)
            self._out.append(Committed(height, digest, node.block.payload,
                                       block_proof(node.block, node.total_work, self.tip.total_work - node.total_work)))
            self._stats.committed += 1

    def _final_height(self) -> int:
        """The highest height with at least ``k * 2**difficulty`` work built on top of it in the best chain."""
        needed = self.config.confirmations * work(self.config.difficulty)
        node = self.tip
        while node.parent is not None and self.tip.total_work - node.total_work < needed:
            node = node.parent
        return node.height

    # -- mining --------------------------------------------------------------------------------

    def _mine(self) -> None:
        if self.last_mine is None or self.share == 0:
            self.last_mine = self.now
            return
        elapsed = min(self.now - self.last_mine, self.config.max_tick_gap)
        self.last_mine = self.now
        budget = self.carry + self.config.rate * self.share * elapsed
        attempts = int(budget)
        self.carry = budget - attempts
        while attempts > 0:
            if self.template is None:
                self.template = self._new_template()
                if self.template is None:
                    return
            solved, used = self.template.search.attempt(attempts)
            attempts -= used
            self._stats.events["hashes"] += used
            if solved is not None:
                template, self.template = self.template, None
                block = sign_block(self.identity, solved, template.payload, template.evidence)
                self._stats.events["mined"] += 1
                self._connect(block, self.nodes[solved.prev], own=True)
                self._send(None, encode_block(block))
                self._update_tip()

    def _new_template(self) -> _Template | None:
        parent = self.tip
        height = parent.height + 1
        in_flight = set()
        node: BlockNode | None = parent
        while node is not None and node.block is not None and node.height > self.last_reported:
            in_flight.add(node.block.header.payload_hash)
            node = node.parent
        payload: bytes | None = None
        for digest, candidate in list(self.pending.items()):
            if digest in in_flight:
                continue
            if judge(self.validate, height, candidate) is None:
                payload = candidate
                break
            del self.pending[digest]
            self._stats.events["invalid_request"] += 1
        if payload is None:
            if not self.config.mine_empty:
                return None
            payload = b""
        evidence = self._evidence_for(parent) if self.rule.enabled else ()
        header = Header(height, parent.hash, sha256_hex(payload), self.name, 0,
                        self.difficulty_for(self.name, parent), tuple(e.hash for e in evidence))
        return _Template(NonceSearch(header), payload, evidence)

    def _evidence_for(self, parent: BlockNode) -> tuple[Block, ...]:
        height = parent.height + 1
        window = self.rule.evidence_window
        for digest in [d for d, b in self.evidence_pool.items() if b.header.height < height - window]:
            del self.evidence_pool[digest]
        earlier = self._evidence_near(parent)
        fresh = [b for d, b in self.evidence_pool.items()
                 if d not in earlier and abs(b.header.height - height) <= window]
        return tuple(fresh[: self.rule.max_evidence])

    def _send(self, to: str | None, raw: bytes) -> None:
        self._out.append(Send(to, raw))
        self._stats.sent += 1
