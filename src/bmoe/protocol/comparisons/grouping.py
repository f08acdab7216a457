"""Grouping answers within a bound, and the value a group accepts (the ``tolerance`` comparison).

Owns, for one expert in one phase, from the answers' bytes:

- **validity**: an answer is comparable when its bytes are a finite result (n_e, C) or updated
  weights with the base expert's names, shapes and dtypes; anything else (missing, corrupt,
  non-finite, the wrong shape) is grouped only with byte-identical answers;
- **distance** between two comparable answers: results, the largest per-row
  ‖a - b‖₂ / max(‖a‖₂, ‖b‖₂, floor) in float64 (the calibrated ``per_sample`` metric: every sample
  must be close); updates, the largest element-wise |a - b| / max(1, |a|, |b|) (absolute for weights
  up to 1, relative above);
- **grouping**, deterministic for any set of answers: answers with equal digests are one value (the
  fast path: no distance is computed between equal bytes). Among the values not yet grouped, each
  candidate medoid gathers every answer within the bound of it; the candidate gathering the most
  edges wins, ties broken by the smaller sum of distances, then the smaller digest. Its answers are a
  group; repeat until none is left. Invalid answers follow, one group per digest. Groups are sorted
  largest first (stable), so the first group is the one an acceptance rule can accept;
- **the accepted value**: the element-wise (lower) median of the first group's answers, one per
  edge, encoded canonically and stored under its own CID. Taking a stored value, not computing a
  mean, keeps it bit-identical on every machine; and a minority inside the group cannot move any
  element outside the range of the majority's values.
- each edge's **distance** to the first group's medoid, recorded with a dissent (None when either
  answer is not comparable).

Must not know the ledger's transactions or the acceptance rule: it sees edges, digests and bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from bmoe.moe.payloads import NonFiniteValue, PayloadError, decode_result, encode_result, require_finite
from bmoe.storage import deserialize_tensors, serialize_tensors
from bmoe.verify.comparison import Tolerance

Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Expected:
    """What a comparable answer holds: a result of ``rows`` x ``classes``, or weights like ``template``."""

    phase: str  # "result" | "update"
    rows: int = 0
    classes: int = 0
    template: Mapping[str, tuple[tuple[int, ...], torch.dtype]] | None = None  # name -> (shape, dtype)

    @staticmethod
    def update_like(base: Weights) -> Expected:
        return Expected("update", template={name: (tuple(t.shape), t.dtype) for name, t in base.items()})


@dataclass(frozen=True)
class Answer:
    """One edge's committed answer: its digest and the bytes found under its CID (None: not found, or
    bytes that are not what the digest names)."""

    edge: str
    digest: str
    data: bytes | None


@dataclass(frozen=True)
class Group:
    edges: tuple[str, ...]  # sorted
    digest: str  # the medoid's digest (a group of invalid answers: their one digest)
    valid: bool


@dataclass(frozen=True)
class Grouping:
    groups: list[Group]
    distances: dict[str, float | None]  # edge -> distance to the first group's medoid
    values: dict[str, Weights]  # digest -> decoded tensors, for the comparable values
    non_finite: tuple[str, ...] = ()  # edges whose answer has the right form but holds NaN or inf

    def edges(self) -> list[tuple[str, ...]]:
        """The groups as the ledger records them."""
        return [group.edges for group in self.groups]


def decode_answer(data: bytes | None, expected: Expected) -> Weights | None:
    """The answer's tensors when it is comparable, else None."""
    try:
        return _decoded(data, expected)
    except NonFiniteValue:
        return None


def _decoded(data: bytes | None, expected: Expected) -> Weights | None:
    """The answer's tensors, None when it is not of the expected form, NonFiniteValue when it is but
    holds NaN or inf."""
    if data is None:
        return None
    try:
        if expected.phase == "result":
            return {"output": decode_result(data, expected.rows, expected.classes)}
        tensors, _ = deserialize_tensors(data)
    except NonFiniteValue:
        raise
    except PayloadError:
        return None
    except Exception:  # corrupt bytes from an untrusted edge are data, not a crash
        return None
    template = expected.template or {}
    if set(tensors) != set(template):
        return None
    for name, tensor in tensors.items():
        shape, dtype = template[name]
        if tuple(tensor.shape) != shape or tensor.dtype != dtype:
            return None
    for name, tensor in sorted(tensors.items()):
        require_finite(name, tensor)
    return tensors


def distance(a: Weights, b: Weights, phase: str, comparison: Tolerance) -> float:
    """How far apart two comparable answers are, in the metric ``phase`` is bounded by."""
    if phase == "result":
        x, y = a["output"].double(), b["output"].double()  # (S, C)
        if x.numel() == 0:
            return 0.0
        scale = torch.maximum(x.norm(dim=1), y.norm(dim=1)).clamp(min=comparison.norm_floor)  # (S,)
        return float(((x - y).norm(dim=1) / scale).max())
    return max((_largest_difference(a[name], b[name]) for name in sorted(a)), default=0.0)


def _largest_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(1, |a|, |b|): absolute for weights up to 1 (all of a trained model's, in
    practice), relative above, so honest last-bit differences of large weights stay in the bound. In
    the tensors' own float type (correctly rounded element-wise operations, the same on every machine,
    no float64 copies), in float64 for integer tensors."""
    if a.numel() == 0:
        return 0.0
    if not a.is_floating_point():
        a, b = a.double(), b.double()
    scale = torch.maximum(a.abs(), b.abs()).clamp(min=1.0)
    return float(((a - b).abs() / scale).max())


def group_answers(answers: list[Answer], expected: Expected, comparison: Tolerance) -> Grouping:
    """Group ``answers`` (see the module docstring); deterministic for any input."""
    by_digest: dict[str, list[str]] = {}
    for answer in sorted(answers, key=lambda a: a.edge):
        by_digest.setdefault(answer.digest, []).append(answer.edge)
    values: dict[str, Weights] = {}
    non_finite: set[str] = set()  # digests of answers of the right form holding NaN or inf
    for answer in sorted(answers, key=lambda a: a.edge):
        if answer.digest in values or answer.digest in non_finite:
            continue
        try:
            decoded = _decoded(answer.data, expected)
        except NonFiniteValue:
            non_finite.add(answer.digest)
            continue
        if decoded is not None:
            values[answer.digest] = decoded
    bound = comparison.bound(expected.phase)
    cache: dict[tuple[str, str], float] = {}

    def far(u: str, v: str) -> float:
        if u == v:
            return 0.0
        pair = (u, v) if u < v else (v, u)
        if pair not in cache:
            cache[pair] = distance(values[pair[0]], values[pair[1]], expected.phase, comparison)
        return cache[pair]

    groups: list[Group] = []
    left = sorted(values)
    while left:
        best: tuple[int, float, str] | None = None
        members: list[str] = []
        for center in left:
            near = [v for v in left if far(center, v) <= bound]
            size = sum(len(by_digest[v]) for v in near)
            spread = sum(far(center, v) * len(by_digest[v]) for v in near)
            rank = (-size, spread, center)
            if best is None or rank < best:
                best, members = rank, near
        assert best is not None
        groups.append(Group(tuple(sorted(e for v in members for e in by_digest[v])), best[2], True))
        left = [v for v in left if v not in members]
    for digest in sorted(set(by_digest) - set(values)):
        groups.append(Group(tuple(by_digest[digest]), digest, False))
    groups.sort(key=lambda group: -len(group.edges))  # stable: formation order among equal sizes
    first = groups[0] if groups else None
    distances: dict[str, float | None] = {}
    for digest, edges in by_digest.items():
        measured = far(first.digest, digest) if first is not None and first.valid and digest in values else None
        for edge in edges:
            distances[edge] = measured
    return Grouping(groups, distances, values, tuple(sorted(e for d in non_finite for e in by_digest[d])))


def accepted_value(grouping: Grouping, group: Group, edge_digests: Mapping[str, str], phase: str) -> bytes:
    """The element-wise lower median of ``group``'s answers (one per edge), canonically encoded; the
    one value itself when every member answered the same bytes."""
    counts: dict[str, int] = {}
    for edge in group.edges:
        counts[edge_digests[edge]] = counts.get(edge_digests[edge], 0) + 1
    distinct = sorted(counts)
    values = [grouping.values[digest] for digest in distinct]
    median = values[0] if len(distinct) == 1 else {
        name: lower_median(torch.stack([v[name] for v in values]), torch.tensor([counts[d] for d in distinct]))
        for name in sorted(values[0])}
    return encode_result(median["output"]) if phase == "result" else serialize_tensors(median)


def lower_median(values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The element-wise lower median of ``values`` (k, *shape), value i repeated ``counts[i]`` times: the
    (n+1)//2-th smallest of the n = sum(counts). Equal to the median of the n answers stacked, computed
    over the k distinct ones only."""
    ordered, index = values.sort(dim=0)  # (k, *shape)
    seen = counts[index].cumsum(dim=0)  # (k, *shape): answers at or below each ordered value
    position = (seen < (int(counts.sum()) + 1) // 2).sum(dim=0, keepdim=True)  # (1, *shape)
    return ordered.gather(0, position)[0].contiguous()
