# pragma version 0.4.3
# pragma evm-version prague
# pragma optimize gas
"""
@title BmoeLedger
@license Apache-2.0
@notice bmoe's blocks sealed and recorded on Ethereum (the B-MoE paper's blockchain layer).

    One bmoe block (one round) is one call of `sealBlock` by an enrolled validator's account. The call
    carries the block's header digests and the records extracted from its bmoe transactions (the round's
    task and activation, the edges' commitments, disputes, decisions with their groups, misbehaviour
    records, the gate update); the contract checks what is cheap to check, applies rewards and slashes,
    keeps the expert and gate CIDs, each edge's record and balance, and logs every record, so that an
    auditor lists every sealed block and its records from the logs alone.

    The bmoe state machine still runs off chain on every validator: tensors, Ed25519 signatures (the EVM
    has no Ed25519 precompile), the assignment policy, whether a group's bytes are a valid result and
    tolerance groups are checked there and by `bmoe audit`, against the full block stored by its CID.

    A CID is held as its sha2-256 digest and its multicodec (0x55 raw, 0x70 dag-pb: objects over 256 KiB
    are dag-pb roots, so a digest alone does not name them). Checks that hold only within one block
    (once per phase, supporters committed, quorum) use transient storage keyed by the height.
    Every refusal reverts with a short reason; nothing of a refused block is recorded.
"""

VERSION: public(constant(String[16])) = "bmoe-ledger/1"

MAX_VALIDATORS: constant(uint256) = 128
MAX_EDGES: constant(uint256) = 1024
MAX_EXPERTS: constant(uint256) = 1024
# Per block. Vyper copies every argument array into memory sized by its bound and pays the memory
# expansion for the bound on each call, so these are kept to what a round at the paper's scale needs
# with room (N = 10, M = 10: 200 commitments, 20 decisions); docs/ethereum.md has the cost.
MAX_COMMITMENTS: constant(uint256) = 512
MAX_DECISIONS: constant(uint256) = 128
MAX_MISBEHAVIOURS: constant(uint256) = 256
MAX_DISPUTES: constant(uint256) = 64
MAX_GROUP: constant(uint256) = 256

RESULT: constant(uint8) = 0
UPDATE: constant(uint8) = 1
TRAIN: constant(uint8) = 1
INFER: constant(uint8) = 2
ACCEPTED: constant(uint8) = 1
NO_QUORUM: constant(uint8) = 2
MALFORMED: constant(uint8) = 3
DISSENT: constant(uint8) = 1
WITHHELD: constant(uint8) = 2
RAW: constant(uint16) = 85  # 0x55
DAG_PB: constant(uint16) = 112  # 0x70

# An edge's record in one word: bit 0 enrolled, then four 64-bit counters.
ENROLLED: constant(uint256) = 1
COMMITTED_SHIFT: constant(uint256) = 1
ACCEPTED_SHIFT: constant(uint256) = 65
DISSENT_SHIFT: constant(uint256) = 129
WITHHELD_SHIFT: constant(uint256) = 193
COUNTER_MASK: constant(uint256) = 18446744073709551615  # 2**64 - 1
# An edge's account in one word: earned in the low 128 bits, slashed in the high 128.
SLASHED_SHIFT: constant(uint256) = 128
AMOUNT_MASK: constant(uint256) = 340282366920938463463374607431768211455  # 2**128 - 1
# Per (edge, expert, phase) flags, within a block.
SUPPORTER: constant(uint256) = 1
ACCUSED: constant(uint256) = 2


struct Cid:
    digest: bytes32
    codec: uint16

struct Header:
    height: uint256
    parent_hash: bytes32
    block_hash: bytes32
    state_root: bytes32
    block_cid: Cid

struct Round:
    task: bytes32  # sha256 of the task id
    kind: uint8  # TRAIN or INFER
    activation_cid: Cid
    counts_hash: bytes32  # sha256 of the canonical JSON of the per-expert counts
    activation_gate: Cid  # the gate the activation evaluated: must be the contract's
    gate_update: Cid  # TRAIN: the gate after the round; INFER: empty

struct Commitment:
    expert: uint16
    phase: uint8
    edge: bytes32
    digest: bytes32
    cid: Cid

struct Dispute:
    expert: uint16
    phase: uint8

struct Decision:
    expert: uint16
    phase: uint8
    status: uint8
    digest: bytes32
    cid: Cid
    assigned: uint16  # edges assigned the expert in this phase (the quorum's denominator)
    supporters: uint16  # the next this many entries of `supporters` are the group (ascending)

struct Misbehaviour:
    expert: uint16
    phase: uint8
    edge: bytes32
    reason: uint8
    evidence: bytes32  # DISSENT: the digest the edge committed; WITHHELD: empty

struct SealedBlock:
    block_hash: bytes32
    state_root: bytes32
    block_cid: Cid

struct Balance:
    stake: uint256
    earned: uint256
    slashed: uint256
    balance: uint256

struct EdgeRecord:
    enrolled: bool
    committed: uint256
    accepted: uint256
    dissent: uint256
    withheld: uint256


event BlockSealed:
    height: indexed(uint256)
    block_hash: bytes32
    parent_hash: bytes32
    state_root: bytes32
    block_cid: bytes32
    block_cid_codec: uint16
    validator: address

event TaskRecorded:
    height: indexed(uint256)
    task: bytes32
    kind: uint8
    activation_cid: bytes32
    activation_cid_codec: uint16
    counts_hash: bytes32
    activation_gate: bytes32
    activation_gate_codec: uint16

event Committed:
    height: indexed(uint256)
    edge: bytes32
    expert: uint16
    phase: uint8
    digest: bytes32
    cid: bytes32
    cid_codec: uint16

event Disputed:
    height: indexed(uint256)
    expert: uint16
    phase: uint8

event Decided:
    height: indexed(uint256)
    expert: uint16
    phase: uint8
    status: uint8
    digest: bytes32
    cid: bytes32
    cid_codec: uint16
    assigned: uint16
    supporters: DynArray[bytes32, MAX_GROUP]

event Misbehaved:
    height: indexed(uint256)
    edge: indexed(bytes32)
    expert: uint16
    phase: uint8
    reason: uint8
    evidence: bytes32
    slashed: uint256

event GateUpdated:
    height: indexed(uint256)
    cid: bytes32
    cid_codec: uint16

event ExpertUpdated:
    height: indexed(uint256)
    expert: indexed(uint16)
    cid: bytes32
    cid_codec: uint16


isValidator: public(HashMap[address, bool])
edges: public(DynArray[bytes32, MAX_EDGES])
quorumNumerator: public(uint256)
quorumDenominator: public(uint256)
quorumStrict: public(bool)  # True: a group needs more than the fraction (majority); False: at least it
exactComparison: public(bool)  # True: a group's supporters all committed its digest
reward: public(uint256)
slash: public(uint256)
minStake: public(uint256)
blockCount: public(uint256)
headHash: public(bytes32)

_experts: DynArray[Cid, MAX_EXPERTS]
_gate: Cid
_blocks: HashMap[uint256, SealedBlock]
_edge_word: HashMap[bytes32, uint256]
_stake: HashMap[bytes32, uint256]
_account: HashMap[bytes32, uint256]

# Within one block; keys hash the height, so nothing leaks between two blocks sealed in one transaction.
_commit_digest: transient(HashMap[bytes32, bytes32])  # (slot, edge) -> the digest it committed
_commit_cid: transient(HashMap[bytes32, bytes32])  # (slot, edge) -> the CID digest it committed
_commit_codec: transient(HashMap[bytes32, uint16])
_flags: transient(HashMap[bytes32, uint256])  # (slot, edge) -> SUPPORTER | ACCUSED
_group: transient(HashMap[bytes32, uint256])  # (slot, digest) -> edges that committed it
_committers: transient(HashMap[bytes32, uint256])  # slot -> edges that committed
_largest: transient(HashMap[bytes32, uint256])  # slot -> the largest group of one digest
_decision: transient(HashMap[bytes32, uint8])  # slot -> its status
_assigned: transient(HashMap[bytes32, uint256])  # slot -> its decision's assigned count
_withheld: transient(HashMap[bytes32, uint256])  # slot -> withheld records
_disputed: transient(HashMap[bytes32, bool])  # (height, expert) -> escalated


@deploy
def __init__(validators: DynArray[address, MAX_VALIDATORS], edges: DynArray[bytes32, MAX_EDGES],
             stakes: DynArray[uint256, MAX_EDGES], gate: Cid, experts: DynArray[Cid, MAX_EXPERTS],
             quorum_numerator: uint256, quorum_denominator: uint256, quorum_strict: bool,
             exact_comparison: bool, reward: uint256, slash: uint256, min_stake: uint256):
    """
    @notice Enrolment: who may seal, the edges and their stakes, the initial gate and experts, the rule.
    @dev Economics off is all zeros (stakes, reward, slash, min_stake).
    """
    assert len(validators) > 0, "no validators"
    for validator: address in validators:
        assert validator != empty(address), "zero validator address"
        assert not self.isValidator[validator], "duplicate validator"
        self.isValidator[validator] = True
    assert len(edges) > 0, "no edges"
    assert len(stakes) == len(edges), "one stake per edge"
    for i: uint256 in range(len(edges), bound=MAX_EDGES):
        edge: bytes32 = edges[i]
        assert edge != empty(bytes32), "zero edge key"
        assert self._edge_word[edge] == 0, "duplicate edge"
        assert stakes[i] >= min_stake, "stake below the minimum stake"
        assert stakes[i] >= slash, "slash larger than a stake"
        assert stakes[i] <= AMOUNT_MASK, "stake too large"
        self._edge_word[edge] = ENROLLED
        self._stake[edge] = stakes[i]
    self.edges = edges
    self._check_cid(gate)
    self._gate = gate
    assert len(experts) > 0, "no experts"
    for cid: Cid in experts:
        self._check_cid(cid)
    self._experts = experts
    assert quorum_numerator > 0 and quorum_numerator <= quorum_denominator, "quorum must be a fraction in (0, 1]"
    assert quorum_denominator <= 2**64, "quorum denominator too large"
    self.quorumNumerator = quorum_numerator
    self.quorumDenominator = quorum_denominator
    self.quorumStrict = quorum_strict
    self.exactComparison = exact_comparison
    assert reward <= 2**64 and slash <= AMOUNT_MASK, "reward or slash too large"
    self.reward = reward
    self.slash = slash
    self.minStake = min_stake


# ---------------------------------------------------------------- sealing


@external
def sealBlock(header: Header, rounds: DynArray[Round, 1], commitments: DynArray[Commitment, MAX_COMMITMENTS],
              disputes: DynArray[Dispute, MAX_DISPUTES], decisions: DynArray[Decision, MAX_DECISIONS],
              supporters: DynArray[bytes32, MAX_COMMITMENTS],
              misbehaviours: DynArray[Misbehaviour, MAX_MISBEHAVIOURS]):
    """
    @notice Seal one bmoe block: its header and its round's records, checked and applied in the round's
            order (commitments, disputes, result decisions then their misbehaviour records, the gate
            update, update decisions then theirs). `decisions` and `misbehaviours` list the result phase
            first; `supporters` holds every decision's group in turn.
    """
    assert self.isValidator[msg.sender], "sender is not an enrolled validator"
    height: uint256 = header.height
    assert height == self.blockCount, "height is not the head's + 1"
    assert header.parent_hash == self.headHash, "parent is not the head"
    assert header.block_hash != empty(bytes32), "zero block hash"
    self._check_cid(header.block_cid)
    kind: uint8 = 0
    gate_update: Cid = empty(Cid)
    if len(rounds) == 1:
        kind = self._record_round(height, rounds[0])
        gate_update = rounds[0].gate_update
    else:
        assert len(commitments) + len(disputes) + len(decisions) + len(misbehaviours) == 0, "records without a task"

    min_stake: uint256 = self.minStake
    committed_slots: uint256 = 0
    for commitment: Commitment in commitments:
        if self._commit(height, commitment, min_stake):
            committed_slots += 1
    for dispute: Dispute in disputes:
        self._dispute(height, dispute)

    exact: bool = self.exactComparison
    reward: uint256 = self.reward
    slash: uint256 = self.slash
    d: uint256 = 0
    s: uint256 = 0
    m: uint256 = 0
    decided_slots: uint256 = 0
    for phase: uint8 in [RESULT, UPDATE]:
        for _: uint256 in range(MAX_DECISIONS):
            if d == len(decisions):
                break
            if decisions[d].phase != phase:
                break
            decision: Decision = decisions[d]
            slot: bytes32 = self._open_decision(height, decision)
            if self._committers[slot] > 0:
                decided_slots += 1
            count: uint256 = convert(decision.supporters, uint256)
            assert count <= MAX_GROUP, "a group larger than MAX_GROUP"
            assert s + count <= len(supporters), "decisions name more supporters than given"
            group: DynArray[bytes32, MAX_GROUP] = []
            previous: uint256 = 0
            cid_found: bool = False
            for i: uint256 in range(count, bound=MAX_GROUP):
                edge: bytes32 = supporters[s + i]
                assert convert(edge, uint256) > previous, "supporters must be distinct, in ascending order"
                previous = convert(edge, uint256)
                if self._support(slot, edge, decision.status, decision.digest, decision.cid, exact, reward):
                    cid_found = True
                group.append(edge)
            s += count
            self._close_decision(height, slot, decision, count, cid_found, exact)
            log Decided(height=height, expert=decision.expert, phase=decision.phase, status=decision.status,
                        digest=decision.digest, cid=decision.cid.digest, cid_codec=decision.cid.codec,
                        assigned=decision.assigned, supporters=group)
            d += 1
        for _: uint256 in range(MAX_MISBEHAVIOURS):
            if m == len(misbehaviours):
                break
            if misbehaviours[m].phase != phase:
                break
            self._accuse(height, misbehaviours[m], slash)
            m += 1
        if phase == RESULT and kind == TRAIN:
            self._gate = gate_update
            log GateUpdated(height=height, cid=gate_update.digest, cid_codec=gate_update.codec)
    assert d == len(decisions), "decisions must list the result phase, then the update phase"
    assert m == len(misbehaviours), "misbehaviour records must follow their phase's decisions"
    assert s == len(supporters), "supporters left over"
    assert decided_slots == committed_slots, "an expert with commitments was not decided"

    self._blocks[height] = SealedBlock(block_hash=header.block_hash, state_root=header.state_root,
                                       block_cid=header.block_cid)
    self.headHash = header.block_hash
    self.blockCount = height + 1
    log BlockSealed(height=height, block_hash=header.block_hash, parent_hash=header.parent_hash,
                    state_root=header.state_root, block_cid=header.block_cid.digest,
                    block_cid_codec=header.block_cid.codec, validator=msg.sender)


@internal
@pure
def _check_cid(cid: Cid):
    assert cid.codec == RAW or cid.codec == DAG_PB, "a CID must be raw or dag-pb"
    assert cid.digest != empty(bytes32), "zero CID digest"


@internal
@pure
def _slot(height: uint256, expert: uint16, phase: uint8) -> bytes32:
    return keccak256(abi_encode(height, expert, phase))


@internal
@pure
def _key(slot: bytes32, word: bytes32) -> bytes32:
    return keccak256(concat(slot, word))


@internal
@view
def _check_expert_phase(expert: uint16, phase: uint8):
    assert convert(expert, uint256) < len(self._experts), "no such expert"
    assert phase <= UPDATE, "phase must be result or update"


@internal
@view
def _meets(size: uint256, assigned: uint256) -> bool:
    if size == 0:
        return False
    if self.quorumStrict:
        return size * self.quorumDenominator > self.quorumNumerator * assigned
    return size * self.quorumDenominator >= self.quorumNumerator * assigned


@internal
@view
def _balance(edge: bytes32) -> uint256:
    account: uint256 = self._account[edge]
    return self._stake[edge] + (account & AMOUNT_MASK) - (account >> SLASHED_SHIFT)


@internal
def _record_round(height: uint256, round: Round) -> uint8:
    assert round.task != empty(bytes32), "zero task id hash"
    assert round.kind == TRAIN or round.kind == INFER, "task kind must be train or infer"
    self._check_cid(round.activation_cid)
    assert round.activation_gate.digest == self._gate.digest and round.activation_gate.codec == self._gate.codec, \
        "the activation's gate is not the contract's gate"
    if round.kind == TRAIN:
        self._check_cid(round.gate_update)
    else:
        assert round.gate_update.digest == empty(bytes32) and round.gate_update.codec == 0, \
            "an inference task updates no gate"
    log TaskRecorded(height=height, task=round.task, kind=round.kind, activation_cid=round.activation_cid.digest,
                     activation_cid_codec=round.activation_cid.codec, counts_hash=round.counts_hash,
                     activation_gate=round.activation_gate.digest, activation_gate_codec=round.activation_gate.codec)
    return round.kind


@internal
def _commit(height: uint256, commitment: Commitment, min_stake: uint256) -> bool:
    """Record one (edge, expert, phase) commitment; True when it is the first for its expert and phase."""
    self._check_expert_phase(commitment.expert, commitment.phase)
    word: uint256 = self._edge_word[commitment.edge]
    assert word & ENROLLED != 0, "commitment by an unenrolled edge"
    if min_stake > 0:
        assert self._balance(commitment.edge) >= min_stake, "committer holds less than the minimum stake"
    assert commitment.digest != empty(bytes32), "zero digest"
    self._check_cid(commitment.cid)
    slot: bytes32 = self._slot(height, commitment.expert, commitment.phase)
    key: bytes32 = self._key(slot, commitment.edge)
    assert self._commit_digest[key] == empty(bytes32), "edge already committed for this expert and phase"
    self._commit_digest[key] = commitment.digest
    self._commit_cid[key] = commitment.cid.digest
    self._commit_codec[key] = commitment.cid.codec
    committers: uint256 = self._committers[slot] + 1
    self._committers[slot] = committers
    group_key: bytes32 = self._key(slot, commitment.digest)
    size: uint256 = self._group[group_key] + 1
    self._group[group_key] = size
    if size > self._largest[slot]:
        self._largest[slot] = size
    self._edge_word[commitment.edge] = word + (1 << COMMITTED_SHIFT)
    log Committed(height=height, edge=commitment.edge, expert=commitment.expert, phase=commitment.phase,
                  digest=commitment.digest, cid=commitment.cid.digest, cid_codec=commitment.cid.codec)
    return committers == 1


@internal
def _dispute(height: uint256, dispute: Dispute):
    self._check_expert_phase(dispute.expert, dispute.phase)
    key: bytes32 = keccak256(abi_encode(height, dispute.expert))
    assert not self._disputed[key], "expert already disputed"
    self._disputed[key] = True
    log Disputed(height=height, expert=dispute.expert, phase=dispute.phase)


@internal
def _open_decision(height: uint256, decision: Decision) -> bytes32:
    self._check_expert_phase(decision.expert, decision.phase)
    slot: bytes32 = self._slot(height, decision.expert, decision.phase)
    assert self._decision[slot] == 0, "expert already decided in this phase"
    status: uint8 = decision.status
    assert status == ACCEPTED or status == NO_QUORUM or status == MALFORMED, \
        "status must be accepted, no_quorum or malformed"
    assigned: uint256 = convert(decision.assigned, uint256)
    assert assigned > 0 and assigned >= self._committers[slot], "assigned count below the committers"
    assert assigned <= len(self.edges), "assigned count above the enrolled edges"
    self._decision[slot] = status
    self._assigned[slot] = assigned
    return slot


@internal
def _support(slot: bytes32, edge: bytes32, status: uint8, digest: bytes32, cid: Cid, exact: bool,
             reward: uint256) -> bool:
    """Check one supporter of a decision and reward it if accepted; True when it committed ``cid``."""
    key: bytes32 = self._key(slot, edge)
    committed: bytes32 = self._commit_digest[key]
    assert committed != empty(bytes32), "supporter did not commit for this expert"
    if exact or status == MALFORMED:
        assert committed == digest, "supporter committed another digest"
    self._flags[key] = SUPPORTER
    if status == ACCEPTED:
        self._edge_word[edge] += 1 << ACCEPTED_SHIFT
        if reward > 0:
            self._account[edge] += reward
    return self._commit_cid[key] == cid.digest and self._commit_codec[key] == cid.codec


@internal
def _close_decision(height: uint256, slot: bytes32, decision: Decision, count: uint256, cid_found: bool,
                    exact: bool):
    assigned: uint256 = convert(decision.assigned, uint256)
    if decision.status == NO_QUORUM:
        assert count == 0 and decision.digest == empty(bytes32), "a no_quorum decision names no group"
        assert decision.cid.digest == empty(bytes32) and decision.cid.codec == 0, "a no_quorum decision has no CID"
        if exact:
            assert not self._meets(self._largest[slot], assigned), "a group meets the quorum: not no_quorum"
        return
    assert decision.digest != empty(bytes32), "zero digest"
    assert self._meets(count, assigned), "supporters do not meet the quorum"
    if exact:
        assert self._group[self._key(slot, decision.digest)] == count, \
            "supporters are not every edge that committed the digest"
    if decision.status == MALFORMED:
        assert decision.cid.digest == empty(bytes32) and decision.cid.codec == 0, "a malformed decision has no CID"
        return
    self._check_cid(decision.cid)
    if exact:
        assert cid_found, "accepted CID is none of the supporters' committed CIDs"
    if decision.phase == UPDATE:
        self._experts[convert(decision.expert, uint256)] = decision.cid
        log ExpertUpdated(height=height, expert=decision.expert, cid=decision.cid.digest,
                          cid_codec=decision.cid.codec)


@internal
def _accuse(height: uint256, record: Misbehaviour, slash: uint256):
    self._check_expert_phase(record.expert, record.phase)
    word: uint256 = self._edge_word[record.edge]
    assert word & ENROLLED != 0, "accused edge is not enrolled"
    slot: bytes32 = self._slot(height, record.expert, record.phase)
    status: uint8 = self._decision[slot]
    assert status != 0, "misbehaviour before the decision"
    key: bytes32 = self._key(slot, record.edge)
    flags: uint256 = self._flags[key]
    assert flags & ACCUSED == 0, "edge already accused for this expert and phase"
    self._flags[key] = flags | ACCUSED
    committed: bytes32 = self._commit_digest[key]
    taken: uint256 = 0
    if record.reason == DISSENT:
        assert committed != empty(bytes32), "dissent by an edge that committed nothing"
        assert status != NO_QUORUM, "dissent under no_quorum: no answer was accepted, nothing is proven"
        assert record.evidence == committed, "evidence is not the edge's committed digest"
        assert not (status == ACCEPTED and flags & SUPPORTER != 0), "dissent against an edge in the accepted group"
        self._edge_word[record.edge] = word + (1 << DISSENT_SHIFT)
        if slash > 0:
            taken = min(slash, self._balance(record.edge))
            self._account[record.edge] += taken << SLASHED_SHIFT
    else:
        assert record.reason == WITHHELD, "reason must be dissent or withheld"
        assert committed == empty(bytes32), "withheld by an edge that committed"
        assert record.evidence == empty(bytes32), "a withheld record carries no evidence"
        withheld: uint256 = self._withheld[slot] + 1
        assert self._committers[slot] + withheld <= self._assigned[slot], "more withheld records than silent edges"
        self._withheld[slot] = withheld
        self._edge_word[record.edge] = word + (1 << WITHHELD_SHIFT)
    log Misbehaved(height=height, edge=record.edge, expert=record.expert, phase=record.phase, reason=record.reason,
                   evidence=record.evidence, slashed=taken)


# ---------------------------------------------------------------- views


@external
@view
def headHeight() -> uint256:
    assert self.blockCount > 0, "no block sealed yet"
    return self.blockCount - 1


@external
@view
def sealedBlock(height: uint256) -> SealedBlock:
    assert height < self.blockCount, "no block sealed at this height"
    return self._blocks[height]


@external
@view
def numExperts() -> uint256:
    return len(self._experts)


@external
@view
def expertCid(expert: uint256) -> Cid:
    assert expert < len(self._experts), "no such expert"
    return self._experts[expert]


@external
@view
def gateCid() -> Cid:
    return self._gate


@external
@view
def edgeCount() -> uint256:
    return len(self.edges)


@external
@view
def balanceOf(edge: bytes32) -> Balance:
    account: uint256 = self._account[edge]
    return Balance(stake=self._stake[edge], earned=account & AMOUNT_MASK, slashed=account >> SLASHED_SHIFT,
                   balance=self._balance(edge))


@external
@view
def edgeRecord(edge: bytes32) -> EdgeRecord:
    word: uint256 = self._edge_word[edge]
    return EdgeRecord(enrolled=word & ENROLLED != 0, committed=(word >> COMMITTED_SHIFT) & COUNTER_MASK,
                      accepted=(word >> ACCEPTED_SHIFT) & COUNTER_MASK, dissent=(word >> DISSENT_SHIFT) & COUNTER_MASK,
                      withheld=(word >> WITHHELD_SHIFT) & COUNTER_MASK)
