"""The exact payload schema of every transaction kind, checked before any rule of the state machine.

Owns what a payload may hold: for each kind exactly these fields (none unknown, none missing), each
of a stated shape and bounded size (CIDs, 64-hex digests and keys, task ids, lists no longer than
the run's N experts, finite numbers in range), and a cap on the whole payload's canonical JSON. So
nothing unbounded or unchecked is ever sealed into every copy of the chain. The meaning of the
fields (who may send them, what they must equal) stays with the handlers of ``ledger/state.py``.

Each field's check is a small function ``(value, limits) -> reason or None``; a kind's schema is a
table of them. Must not know: PyTorch, storage backends, the round.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bmoe.edge.fleet import CPU_PROFILE_NAMES, GPU_PROFILE
from bmoe.ledger.economics import MAX_UNITS
from bmoe.ledger.encoding import canonical_json, is_hex64
from bmoe.ledger.generation import MAX_ROWS_NAMED
from bmoe.ledger.keys import ENROLLED_KEYS, is_signature_hex
from bmoe.ledger.pricing import BASIS, MAX_PRICE
from bmoe.ledger.sealing.ethereum import ETH_ADDRESS
from bmoe.verify.acceptance import RULES
from bmoe.verify.assignment import AssignmentError, make_assignment
from bmoe.verify.bound_window import MAX_BOUND, MAX_PER_SAMPLE
from bmoe.verify.comparison import ComparisonError, make_comparison
from bmoe.verify.framework import FRAMEWORKS
from bmoe.verify.quality_rule import FLAGS as QUALITY_FLAGS
from bmoe.verify.quality_rule import JUDGE_ANSWERS

MAX_PAYLOAD_BYTES = 256 * 1024  # canonical JSON of one payload; a genesis of 1024 edges and experts is ~130 KB
GENERATION_BYTES_PER_SLOT_EDGE = 1280  # a commitment (~300 B) and a record naming 64 rows (~900 B) per slot and edge
MAX_EXPERTS = 1024  # N; the paper uses 10
MAX_EDGES = 1024  # M; the paper uses 10
MAX_VALIDATORS = 128  # PBFT replicas; all-to-all messages make more impractical
MAX_SAMPLES = 1 << 20  # samples in one task (the paper's tasks hold 1000)
MAX_INT = 1 << 53  # rounds and similar counters: exact in every JSON reader
MAX_PAYERS = 4096  # requester accounts in a genesis, payers (and sequences decoded together) in one chunk
MAX_SHAPE_DIMS = 8  # an expert's input shape: (C, H, W) in the presets

_CID = re.compile(r"baf(?:krei|ybei)[a-z2-7]{52}")  # CIDv1, base32, raw or dag-pb, sha2-256 (storage/cid.py)
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}")  # presets, validator names


@dataclass(frozen=True)
class Limits:
    """Bounds that depend on the run: N experts and M edges once the genesis is recorded."""

    experts: int = MAX_EXPERTS
    edges: int = MAX_EDGES
    grouped: bool = False  # the comparison in force records groups (decisions) and distances (dissent)


Check = Callable[[object, Limits], str | None]


# ---------------------------------------------------------------- field checks


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int, high: int | Callable[[Limits], int]) -> Check:
    """An int in [low, high]; ``high`` may depend on the run's limits."""
    def check(value: object, limits: Limits) -> str | None:
        top = high(limits) if callable(high) else high
        if not _is_int(value):
            return f"must be an integer, got {type(value).__name__}"
        return None if low <= value <= top else f"must be in [{low}, {top}], got {value}"  # type: ignore[operator]
    return check


def number(low: float, high: float, *, low_open: bool = False) -> Check:
    """A finite JSON number in [low, high] (or (low, high] when ``low_open``)."""
    def check(value: object, limits: Limits) -> str | None:
        if not (_is_int(value) or isinstance(value, float)):
            return f"must be a number, got {type(value).__name__}"
        try:
            as_float = float(value)  # type: ignore[arg-type]
        except OverflowError:  # an int beyond float range (10**400): not a finite float either
            return "must be finite"
        if not math.isfinite(as_float):
            return "must be finite"
        above = as_float > low if low_open else as_float >= low
        if above and as_float <= high:
            return None
        return f"must be in {'(' if low_open else '['}{low}, {high}]"
    return check


def matches(pattern: re.Pattern[str], what: str) -> Check:
    def check(value: object, limits: Limits) -> str | None:
        if isinstance(value, str) and pattern.fullmatch(value) is not None:
            return None
        return f"must be {what}"
    return check


def hex64(value: object, limits: Limits) -> str | None:
    return None if is_hex64(value) else "must be 64 lower-case hex characters"


cid = matches(_CID, "a CIDv1 (base32, raw or dag-pb, sha2-256)")
task_id = matches(_TASK_ID, "a task id of 1 to 64 characters [A-Za-z0-9._:-]")
name = matches(_NAME, "a name of 1 to 64 characters [A-Za-z0-9._:+-]")


def signature(value: object, limits: Limits) -> str | None:
    return None if is_signature_hex(value) else "must be an Ed25519 signature (128 lower-case hex characters)"


def one_of(*values: str) -> Check:
    def check(value: object, limits: Limits) -> str | None:
        return None if isinstance(value, str) and value in values else f"must be one of {list(values)}"
    return check


def true(value: object, limits: Limits) -> str | None:
    """A flag recorded only when set."""
    return None if value is True else "must be true (absent when not set)"


def nullable(inner: Check) -> Check:
    def check(value: object, limits: Limits) -> str | None:
        return None if value is None else inner(value, limits)
    return check


def expert(value: object, limits: Limits) -> str | None:
    return integer(0, lambda lim: lim.experts - 1)(value, limits)


def list_of(item: Check, low: int, high: Callable[[Limits], int]) -> Check:
    """A list of ``low`` to ``high(limits)`` items, each passing ``item``."""
    def check(value: object, limits: Limits) -> str | None:
        top = high(limits)
        if not isinstance(value, list):
            return f"must be a list, got {type(value).__name__}"
        if not low <= len(value) <= top:
            return f"must hold {low} to {top} items, got {len(value)}"
        for index, entry in enumerate(value):
            reason = item(entry, limits)
            if reason is not None:
                return f"[{index}] {reason}"
        return None
    return check


def mapping(key: Check, item: Check, high: Callable[[Limits], int]) -> Check:
    """A JSON object of at most ``high(limits)`` entries, keys and values each checked."""
    def check(value: object, limits: Limits) -> str | None:
        if not isinstance(value, dict):
            return f"must be an object, got {type(value).__name__}"
        if len(value) > high(limits):
            return f"must hold at most {high(limits)} entries, got {len(value)}"
        for k, v in value.items():
            reason = key(k, limits) or item(v, limits)
            if reason is not None:
                return f"[{str(k)[:16]!r}] {reason}"
        return None
    return check


def record(fields: Mapping[str, Check]) -> Check:
    """A JSON object with exactly ``fields``, each checked."""
    def check(value: object, limits: Limits) -> str | None:
        if not isinstance(value, dict):
            return f"must be an object, got {type(value).__name__}"
        return fields_error(fields, value, limits)
    return check


def tagged(tag: str, variants: Mapping[str, Check]) -> Check:
    """An object whose ``tag`` field picks which of ``variants`` it must match."""
    def check(value: object, limits: Limits) -> str | None:
        variant = variants.get(value.get(tag)) if isinstance(value, dict) else None  # type: ignore[arg-type]
        if variant is None:
            return f"must be an object with {tag!r} one of {sorted(variants)}"
        return variant(value, limits)
    return check


def optional(inner: Check) -> Check:
    """A field that may be absent (a section only some runs record); when present, ``inner`` checks it."""
    def check(value: object, limits: Limits) -> str | None:
        return inner(value, limits)
    check.optional = True  # type: ignore[attr-defined]
    return check


def fields_error(fields: Mapping[str, Check], value: Mapping[str, object], limits: Limits) -> str | None:
    """Why ``value`` does not hold exactly ``fields`` (unknown and missing named; :func:`optional` ones may
    be absent), or None."""
    unknown = sorted(str(key)[:32] for key in value if key not in fields)
    missing = sorted(key for key, check in fields.items() if key not in value and not getattr(check, "optional", False))
    if unknown or missing:
        parts = ([f"unknown {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])
        return "fields: " + "; ".join(parts)
    for key, check in fields.items():
        if key not in value:
            continue
        reason = check(value[key], limits)
        if reason is not None:
            return f"{key}: {reason}"
    return None


def _experts(limits: Limits) -> int:
    return limits.experts


def _edges(limits: Limits) -> int:
    return limits.edges


def by_grouping(plain: Check, grouped: Check) -> Check:
    """``grouped`` when the comparison in force records groups, else ``plain``."""
    def check(value: object, limits: Limits) -> str | None:
        return (grouped if limits.grouped else plain)(value, limits)
    return check


def spec_check(make: Callable[[object], object], error: type[ValueError]) -> Check:
    """A pluggable rule's canonical genesis encoding, as ``make`` reads it (``verify/specs.py``)."""
    def check(value: object, limits: Limits) -> str | None:
        try:
            make(value)
        except error as err:
            return str(err)
        return None
    return check


assignment_spec = spec_check(make_assignment, AssignmentError)
comparison_spec = spec_check(make_comparison, ComparisonError)


_SCORER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/-]{0,127}")  # a quality scorer's name: relevance/all-minilm-l6-v2
_SCORE = integer(-MAX_INT, MAX_INT)  # micro-units (verify/quality_rule.py)
_QUALITY_RULE = record({"tolerance": integer(0, MAX_INT), "threshold": nullable(_SCORE),
                        "band": nullable(integer(0, MAX_INT))})
_QUALITY_JUDGE = record({"model": name, "answer": one_of(*JUDGE_ANSWERS), "margin": _SCORE, "bias": _SCORE})
_QUALITY_OUTCOME = record({"median": nullable(_SCORE), "flag": one_of(*QUALITY_FLAGS),
                           "misjudging": list_of(name, 0, lambda _: MAX_VALIDATORS), "judge": nullable(_QUALITY_JUDGE)})
_QUALITY_VERDICT = {"generation": task_id, "response": task_id,
                    "chunks": list_of(integer(0, MAX_INT), 1, lambda _: 4096),  # 4096 chunks: 65536 tokens at 16 steps
                    "completion": hex64, "scorer": matches(_SCORER, "a scorer name of 1 to 128 characters"),
                    "scores": mapping(name, nullable(_SCORE), lambda _: MAX_VALIDATORS), "rule": _QUALITY_RULE,
                    "verdict": _QUALITY_OUTCOME}  # ledger/quality.py


# ---------------------------------------------------------------- the table

_RESULT = record({"expert": expert, "digest": hex64, "cid": cid})
_UPDATE = record({"expert": expert, "base_cid": cid, "digest": hex64, "cid": cid})
_DECISION_FIELDS: Mapping[str, Check] = {"expert": expert, "status": one_of("accepted", "no_quorum", "malformed"),
                                          "digest": nullable(hex64), "cid": nullable(cid)}
_GROUPS = list_of(list_of(hex64, 1, _edges), 0, _edges)
_DECISION = by_grouping(record({**_DECISION_FIELDS, "groups": optional(_GROUPS)}),  # exact: no_quorum's evidence
                        record({**_DECISION_FIELDS, "groups": _GROUPS}))
_RECORD_FIELDS: Mapping[str, Check] = {"expert": expert, "reason": one_of("dissent", "withheld"),
                                       "evidence": nullable(hex64)}
_RECORD = by_grouping(record(_RECORD_FIELDS), record({**_RECORD_FIELDS, "distance": nullable(number(0.0, math.inf))}))
_DECISIONS = list_of(_DECISION, 1, _experts)
_DISPUTE = by_grouping(record({"expert": expert}), record({"expert": expert, "groups": _GROUPS}))

_CONSENSUS = tagged("engine", {
    "pow": record({"engine": one_of("pow"), "difficulty": integer(0, 256)}),
    "pbft": record({"engine": one_of("pbft"),
                    "validators": mapping(name, hex64, lambda _: MAX_VALIDATORS),
                    "f": integer(0, MAX_VALIDATORS)}),
    "ethereum": record({"engine": one_of("ethereum"), "chain_id": integer(1, MAX_INT),
                        "contract": matches(ETH_ADDRESS, "a lower-case 0x-prefixed 20-byte address"),
                        "accounts": mapping(hex64, matches(ETH_ADDRESS, "a lower-case 0x-prefixed 20-byte address"),
                                            lambda _: MAX_VALIDATORS)}),
})
_EXPERT_SPEC = record({"preset": name, "input_shape": list_of(integer(1, MAX_INT), 1, lambda _: MAX_SHAPE_DIMS),
                       "num_classes": integer(1, 1 << 20), "hidden": integer(1, 1 << 24)})

_CALL_COMMITMENT = record({"outputs": cid, "signature": signature})
_GENERATION_DISPUTE = record({"slot": expert, "inputs": hex64, "accepted": cid,
                              "commitments": mapping(hex64, _CALL_COMMITMENT, _edges)})
_ROW = list_of(integer(0, MAX_INT), 2, lambda _: 2)  # [sequence, position]
_GENERATION_RECORD = record({"edge": hex64, "slot": expert, "reason": one_of("dissent", "withheld"),
                             "rows": list_of(_ROW, 0, lambda _: MAX_ROWS_NAMED)})

_PRICING = record({"base": integer(0, MAX_PRICE), "floor": integer(1, MAX_PRICE), "cap": integer(1, MAX_PRICE),
                   "capacity": integer(1, MAX_PAYERS), "validator_bp": integer(0, BASIS)})
_PAYMENTS = record({"pricing": _PRICING, "deposits": mapping(name, integer(0, MAX_UNITS), lambda _: MAX_PAYERS)})
_CHARGE = record({"payer": name, "tokens": integer(1, MAX_INT), "amount": integer(0, MAX_UNITS)})
_CREDIT = record({"edge": hex64, "calls": integer(1, MAX_INT), "amount": integer(0, MAX_UNITS)})

SCHEMAS: Mapping[str, Mapping[str, Check]] = {
    "genesis": {
        "framework": one_of(*FRAMEWORKS),
        "config_hash": hex64,
        "num_experts": integer(1, MAX_EXPERTS),
        "top_k": integer(1, MAX_EXPERTS),
        "lr": number(0.0, math.inf, low_open=True),
        "balance": number(0.0, math.inf),
        "edges": list_of(hex64, 1, lambda _: MAX_EDGES),
        "validators": list_of(hex64, 1, lambda _: MAX_VALIDATORS),
        "consensus": _CONSENSUS,
        "publisher": hex64,
        "assignment": assignment_spec,
        "rule": record({"name": one_of(*RULES), "fraction": number(0.0, 1.0, low_open=True)}),
        "comparison": comparison_spec,
        "expert_spec": _EXPERT_SPEC,
        "gate_cid": cid,
        "expert_cids": list_of(cid, 1, lambda _: MAX_EXPERTS),
        "keys": optional(one_of(ENROLLED_KEYS)),  # absent: every key derives from the run's seed
        "economics": optional(record({"stakes": mapping(hex64, integer(0, MAX_UNITS), lambda _: MAX_EDGES),
                                      "reward": integer(0, MAX_UNITS), "slash": integer(0, MAX_UNITS),
                                      "min_stake": integer(0, MAX_UNITS)})),
        "calibration": optional(record({"cid": cid, "result_max": number(0.0, MAX_PER_SAMPLE),
                                        "update_max": number(0.0, MAX_BOUND)})),
        "force_bound": optional(true),
        "payments": optional(_PAYMENTS),
    },
    "task": {"task_id": task_id, "kind": one_of("train", "infer"), "data_cid": cid,
             "samples": integer(1, MAX_SAMPLES), "round": integer(0, MAX_INT)},
    "activation": {"task_id": task_id, "gate_cid": cid, "activation_cid": cid,
                   "counts": list_of(integer(0, MAX_EXPERTS * MAX_SAMPLES), 1, _experts)},
    "commitment": {"task_id": task_id, "results": list_of(_RESULT, 1, _experts)},
    "expert_update": {"task_id": task_id, "updates": list_of(_UPDATE, 1, _experts)},
    "acceptance": {"task_id": task_id, "decisions": _DECISIONS, "output_cid": cid},
    "update_acceptance": {"task_id": task_id, "decisions": _DECISIONS},
    "misbehaviour": {"task_id": task_id, "phase": one_of("result", "update"), "edge": hex64,
                     "records": list_of(_RECORD, 1, _experts)},
    "dispute": {"task_id": task_id, "phase": one_of("result", "update"), "disputes": list_of(_DISPUTE, 1, _experts)},
    "gate_update": {"task_id": task_id, "loss": number(0.0, math.inf), "gate_cid": cid,
                    "gradient_cids": mapping(matches(re.compile(r"0|[1-9][0-9]{0,5}"), "an expert index"), cid,
                                             _experts)},
    "generation_chunk": {"generation": task_id, "chunk": integer(0, MAX_INT), "records": cid, "outputs_root": hex64,
                         "calls": integer(0, _experts), "rows": integer(0, MAX_INT), "tokens": integer(0, MAX_INT),
                         "checked": integer(0, _experts), "seed": integer(0, MAX_INT),
                         "disputes": list_of(_GENERATION_DISPUTE, 0, _experts),
                         "records_against": list_of(_GENERATION_RECORD, 0, lambda lim: lim.experts * lim.edges)},
    "settlement": {"generation": task_id, "chunk": integer(0, MAX_INT), "active": integer(1, MAX_PAYERS),
                   "price": integer(1, MAX_PRICE), "charges": list_of(_CHARGE, 0, lambda _: MAX_PAYERS),
                   "credits": list_of(_CREDIT, 0, _edges), "validator": integer(0, MAX_UNITS)},
    "deposit": {"account": name, "amount": integer(1, MAX_UNITS)},
    "quality_verdict": _QUALITY_VERDICT,
    # heterogeneous edges (ledger/placement.py)
    "capability": {"memory": integer(0, MAX_INT), "profile": one_of(*CPU_PROFILE_NAMES, GPU_PROFILE),
                   "throughput": number(0.0, 1e15)},
    "departure": {"edge": hex64},
    "placement": {"epoch": integer(0, MAX_INT), "holders_per_slot": integer(1, _edges),
                  "slot_bytes": list_of(integer(1, MAX_INT), 1, _experts),
                  "holders": list_of(list_of(hex64, 1, _edges), 1, _experts)},
}


def payload_cap(kind: str, limits: Limits) -> int:
    """The most bytes of canonical JSON a ``kind`` payload may have: :data:`MAX_PAYLOAD_BYTES`, and for a generation
    chunk, whose evidence is at most every edge's commitment and record on every slot, what the run's N slots and M
    edges allow (:data:`GENERATION_BYTES_PER_SLOT_EDGE` each): bounded by the genesis, never by the sender."""
    if kind == "generation_chunk":
        return max(MAX_PAYLOAD_BYTES, limits.experts * limits.edges * GENERATION_BYTES_PER_SLOT_EDGE)
    return MAX_PAYLOAD_BYTES


def payload_error(kind: str, payload: Mapping[str, object], limits: Limits, size: int | None = None) -> str | None:
    """Why ``payload`` is not a valid ``kind`` payload (size first, then the schema), or None. ``size``: the
    length of its canonical JSON when the caller has it (``transactions.tx_payload_size``), else it is encoded."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        return f"no schema for kind {kind!r}"
    if size is None:
        try:
            size = len(canonical_json(dict(payload)))
        except (TypeError, ValueError, RecursionError):
            return "payload is not canonical JSON"
    cap = payload_cap(kind, limits)
    if size > cap:
        return f"payload is {size} bytes of canonical JSON, more than the cap of {cap}"
    return fields_error(schema, payload, limits)
