"""Verified generation's detection and localisation of a lying edge (issue 25, "What it must reach").

One edge of M (``--edges``, 5) lies: each attack kind of ``edge/attacks/expert_output.OUTPUT_ATTACKS`` in turn, its
own seeded attack striking each call it computes with ``--lie-probability`` and one row of it (``rows="one"``:
every lie is one token's row). The model is ``LMConfig``'s default (4 layers, d = 128, 8 experts top-2, a 64-token
context, a 65-token vocabulary) with random weights (``build_model``, seed 0): detection does not depend on what
the weights say. ``--prompts`` random prompts of ``--prompt-length`` tokens are decoded together, each to
``--tokens`` new tokens (temperature 0.8, seeded), through ``open_session`` (``run/generation.py``) under each
replication setting: check probability p in ``--probabilities`` at r = 1, then r = 2 and all (every other edge)
at p = 1.

Ground truth is the attack's ``strikes``: every struck row is a lie told, either on the fast path (the liar was the
call's primary, so generation used it) or as a replica (a commitment to a wrong re-computation). Each is placed in
its chunk and its (sequence, token position) by its input row in the chunk's call records. Measured, per (attack,
setting):

- **detection**: the lies that a ``dissent`` record on the ledger (``records_against`` of the sealed
  ``generation_chunk`` transactions) names, over the lies told; also for the fast path's lies alone;
- **localisation**: the checked lies (in a call the policy re-computed) whose record names exactly the liar's edge,
  the call's (layer, expert) and the (sequence, position) rows of its lies there, no more and no fewer, over the
  checked lies (the issue wants 100 %); and any record that is not such (a false or inexact accusation);
- whether the generated tokens equal the clean generation (``lm.decoding.engine.complete``, no protocol): a lie on
  an unchecked call (p < 1) goes through, so they may differ there.

It prints one table, writes it as CSV and plots detection against the check probability, one line per attack
(``--out``: a folder, a temporary one by default). Each run repeats with ``--repeats`` seeds, pooled.

    python benchmarks/bench_generation_detection.py [--out DIR] [--repeats 2] [--tokens 24] [--prompts 4]
    python benchmarks/bench_generation_detection.py --repeats 5 --attacks noise,zero   # tighter rates
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bmoe.edge.attacks.expert_output import OUTPUT_ATTACKS, ExpertOutputAttack, make_output_attack
from bmoe.ledger.generation import MAX_ROWS_NAMED
from bmoe.lm.config import LMConfig
from bmoe.lm.decoding.engine import complete
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer, build_model
from bmoe.protocol.generation.decoding import SealedChunk
from bmoe.protocol.generation.policy import ALL
from bmoe.protocol.generation.records import CallRecord, decode_records
from bmoe.run.generation import GenerationSession, GenerationSettings, open_session

LIAR = 2  # the lying edge's index among the M


@dataclass(frozen=True)
class Setting:
    name: str
    replicas: int
    probability: float


@dataclass(frozen=True)
class Lie:
    """One struck row, where the session placed it."""

    chunk: int
    slot: int
    row: torch.Tensor  # (d,) the struck row's input


@dataclass
class LieTracer:
    """Wraps the liar's attack: each new strike is noted with the chunk it happened in and its rows' inputs."""

    attack: ExpertOutputAttack
    experts_per_layer: int
    session: GenerationSession | None = None
    lies: list[Lie] = field(default_factory=list)

    def __call__(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        before = len(self.attack.strikes)
        answer = self.attack(layer, expert, inputs, outputs)
        assert self.session is not None
        chunk = len(self.session.decoding.sealed)  # fast path and verification of chunk c both run before it seals
        for strike in self.attack.strikes[before:]:
            self.lies.extend(Lie(chunk, layer * self.experts_per_layer + expert, inputs[row].clone())
                             for row in strike.rows)
        return answer


@dataclass
class Tally:
    """What one (attack, setting) pooled over its repeats."""

    told: int = 0
    detected: int = 0
    fast: int = 0  # lies generation used (the liar was the call's primary)
    fast_detected: int = 0
    checked: int = 0  # lies in a call the policy re-computed
    pinned: int = 0  # checked lies whose record names exactly the liar, the call and its lied rows
    records: int = 0  # records against any edge
    wrong_records: int = 0  # records that are not exactly a lie set of the liar
    runs: int = 0
    clean_runs: int = 0  # runs whose tokens equal the clean generation
    seconds: float = 0.0

    def rate(self, part: int, whole: int) -> float:
        return part / whole if whole else float("nan")


def capture_transactions(session: GenerationSession) -> list[dict[str, Any]]:
    """The ``generation_chunk`` payloads as the ledger sealed them, collected as the session seals each block."""
    sealed: list[dict[str, Any]] = []
    record = session.decoding.recorder

    def recorder(payload: dict[str, Any]) -> SealedChunk:
        chunk = record(payload)
        sealed.extend(tx.payload for tx in session.node.last_transactions if tx.kind == "generation_chunk")
        return chunk
    session.decoding.recorder = recorder
    return sealed


def decode(session: GenerationSession, prompts: list[list[int]], params: list[SamplingParams]) -> list[list[int]]:
    decoding = session.decoding
    requests = [decoding.submit(prompt, p) for prompt, p in zip(prompts, params, strict=True)]
    while decoding.busy:
        decoding.step()
    return [decoding.result(request).tokens for request in requests]


def place(lie: Lie, call: CallRecord) -> tuple[int, int]:
    """The (sequence, position) of the recorded row whose input is the lie's: exactly one must match."""
    matches = (call.inputs.view(torch.int32) == lie.row.view(torch.int32)).all(dim=1).nonzero().flatten().tolist()
    assert len(matches) == 1, f"a lie's input row matches {len(matches)} rows of its call's record"
    return int(call.sequences[matches[0]]), int(call.positions[matches[0]])


def judge(tally: Tally, session: GenerationSession, tracer: LieTracer, sealed: list[dict[str, Any]]) -> None:
    """Add one run's lies and records to ``tally``."""
    liar = session.edges[LIAR].address
    calls = {(c.chunk, call.slot): call for c in session.decoding.sealed
             for call in decode_records(session.store.get(c.records)).calls}
    truth: dict[tuple[int, int], set[tuple[int, int]]] = defaultdict(set)  # (chunk, slot) -> the lied rows
    placed = []
    for lie in tracer.lies:
        call = calls[(lie.chunk, lie.slot)]
        row = place(lie, call)
        truth[(lie.chunk, lie.slot)].add(row)
        placed.append((lie, call, row))
    named: dict[tuple[int, int], set[tuple[int, int]]] = {}  # (chunk, slot) -> rows a record against the liar names
    exact: set[tuple[int, int]] = set()
    for payload in sealed:
        for record in payload["records_against"]:
            key = (payload["chunk"], record["slot"])
            rows = {(int(s), int(p)) for s, p in record["rows"]}
            tally.records += 1
            if record["edge"] != liar or record["reason"] != "dissent":
                tally.wrong_records += 1
                continue
            named[key] = rows
            lied = truth.get(key, set())
            if rows == lied or (len(lied) > MAX_ROWS_NAMED and len(rows) == MAX_ROWS_NAMED and rows <= lied):
                exact.add(key)
            else:
                tally.wrong_records += 1
    for lie, call, row in placed:
        key = (lie.chunk, lie.slot)
        fast = call.primary == liar
        detected = row in named.get(key, set())
        tally.told += 1
        tally.detected += detected
        tally.fast += fast
        tally.fast_detected += fast and detected
        checked = call.checked or not fast  # a replica's lie is in a checked call by construction
        tally.checked += checked
        tally.pinned += checked and key in exact


def run_once(model: MoETransformer, kind: str, setting: Setting, args: argparse.Namespace, seed: int,
             prompts: list[list[int]], params: list[SamplingParams], clean: list[list[int]], tally: Tally) -> None:
    attack = make_output_attack(kind, model, seed=1000 + seed, probability=args.lie_probability, rows="one")
    tracer = LieTracer(attack, model.config.num_local_experts)
    settings = GenerationSettings(edges=args.edges, replicas=setting.replicas, probability=setting.probability,
                                  chunk_steps=args.chunk_steps, seed=seed, max_batch=len(prompts))
    started = time.perf_counter()
    session = open_session(model, settings, lambda edge: tracer if edge == LIAR else None)
    tracer.session = session
    sealed = capture_transactions(session)
    tokens = decode(session, prompts, params)
    tally.seconds += time.perf_counter() - started
    judge(tally, session, tracer, sealed)
    tally.runs += 1
    tally.clean_runs += tokens == clean


def settings_of(probabilities: Sequence[float]) -> list[Setting]:
    return [*(Setting(f"r=1 p={p:g}", 1, p) for p in probabilities), Setting("r=2", 2, 1.0),
            Setting("all", ALL, 1.0)]


def percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.0f} %"


def table(results: dict[tuple[str, str], Tally], kinds: list[str], settings: list[Setting]) -> list[list[str]]:
    rows = [["attack", "setting", "lies", "detected", "fast-path lies", "detected", "checked lies",
             "pinned exactly", "wrong records", "clean tokens", "s/run"]]
    for kind in kinds:
        for setting in settings:
            t = results[(kind, setting.name)]
            rows.append([kind, setting.name, str(t.told), percent(t.rate(t.detected, t.told)), str(t.fast),
                         percent(t.rate(t.fast_detected, t.fast)), str(t.checked), percent(t.rate(t.pinned, t.checked)),
                         str(t.wrong_records), f"{t.clean_runs}/{t.runs}", f"{t.seconds / max(t.runs, 1):.2f}"])
    return rows


def model_and_requests(count: int, length: int, tokens: int) -> tuple[MoETransformer, list[list[int]],
                                                                      list[SamplingParams]]:
    """``LMConfig``'s default model, random weights (seed 0), and ``count`` random prompts of ``length`` tokens
    with their sampling (``tokens`` new tokens, temperature 0.8, a seed each)."""
    model = build_model(LMConfig(vocab_size=65), seed=0).eval()
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, model.config.vocab_size, (length,), generator=generator).tolist()
               for _ in range(count)]
    return model, prompts, [SamplingParams(max_tokens=tokens, temperature=0.8, seed=i) for i in range(count)]


def print_table(rows: list[list[str]]) -> None:
    """``rows`` (a header first) as a Markdown table."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("| " + " | ".join(cell.ljust(w) for cell, w in zip(rows[0], widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows[1:]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")


def plot(results: dict[tuple[str, str], Tally], kinds: list[str], settings: list[Setting], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sampled = [s for s in settings if s.replicas == 1]
    replicated = [s for s in settings if s.probability == 1]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for index, kind in enumerate(kinds):  # kinds often coincide (they strike the same calls): markers tell them
        style = {"marker": "osv^Dx+"[index % 7], "markersize": 9 - index, "linestyle": ("-", "--", ":")[index % 3],
                 "label": kind}
        detected = [results[(kind, s.name)] for s in sampled]
        left.plot([s.probability for s in sampled], [100 * t.rate(t.detected, t.told) for t in detected], **style)
        detected = [results[(kind, s.name)] for s in replicated]
        right.plot(range(len(replicated)), [100 * t.rate(t.detected, t.told) for t in detected], **style)
    left.plot([0, 1], [0, 100], color="grey", linewidth=0.8, label="y = p")
    left.set(xlabel="check probability p (r = 1)", ylabel="lies recorded on the ledger (%)", xlim=(0, 1.05),
             ylim=(-3, 103), title="Detection against the audit probability")
    right.set(xticks=range(len(replicated)), xticklabels=[s.name for s in replicated], ylim=(-3, 103),
              xlabel="replicas per checked call (p = 1)", title="Every call checked")
    left.legend(fontsize=8, ncol=2)
    left.grid(alpha=0.3)
    right.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the plot and the CSV (default: a temp dir)")
    parser.add_argument("--edges", type=int, default=5, help="M, the edges (one of them lies)")
    parser.add_argument("--attacks", default=",".join(OUTPUT_ATTACKS), help="attack kinds, comma-separated")
    parser.add_argument("--probabilities", default="0.1,0.25,0.5,1", help="check probabilities at r = 1")
    parser.add_argument("--lie-probability", type=float, default=0.1, help="the liar strikes a call with this")
    parser.add_argument("--prompts", type=int, default=4, help="prompts decoded together")
    parser.add_argument("--prompt-length", type=int, default=8, help="tokens per prompt")
    parser.add_argument("--tokens", type=int, default=24, help="new tokens per prompt")
    parser.add_argument("--chunk-steps", type=int, default=8, help="decoding steps per verified chunk")
    parser.add_argument("--repeats", type=int, default=2, help="seeds per (attack, setting), pooled")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    kinds = args.attacks.split(",")
    unknown = [k for k in kinds if k not in OUTPUT_ATTACKS]
    if unknown:
        parser.error(f"unknown attack {unknown[0]!r}; the kinds are {', '.join(OUTPUT_ATTACKS)}")
    try:
        args.probability_list = sorted({float(p) for p in args.probabilities.split(",")})
    except ValueError:
        parser.error(f"--probabilities must be numbers in (0, 1], got {args.probabilities!r}")
    if not all(0 < p <= 1 for p in args.probability_list):
        parser.error(f"--probabilities must be numbers in (0, 1], got {args.probabilities!r}")
    if args.edges < 3 or not 0 < args.lie_probability <= 1 or min(args.prompts, args.tokens, args.repeats,
                                                                     args.chunk_steps, args.prompt_length) < 1:
        parser.error("need edges >= 3, a lie probability in (0, 1], and prompts, tokens, repeats, chunk steps, "
                     "prompt length >= 1")
    if args.prompt_length + args.tokens > LMConfig(vocab_size=65).max_position_embeddings:
        parser.error("prompt length + tokens must fit the model's 64-token context")
    args.kinds = kinds
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model, prompts, params = model_and_requests(args.prompts, args.prompt_length, args.tokens)
    config = model.config
    clean = [complete(model, prompt, p).tokens for prompt, p in zip(prompts, params, strict=True)]
    settings = settings_of(args.probability_list)
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="bmoe-generation-detection-"))
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    results: dict[tuple[str, str], Tally] = {}
    for kind in args.kinds:
        for setting in settings:
            tally = results[(kind, setting.name)] = Tally()
            for seed in range(args.repeats):
                run_once(model, kind, setting, args, seed, prompts, params, clean, tally)
        print(f"  {kind}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"model: LMConfig's default ({config.num_hidden_layers} layers, d = {config.hidden_size}, "
          f"{config.num_local_experts} experts top-{config.num_experts_per_tok}), random weights; {args.edges} edges, "
          f"edge {LIAR} lies on a call with probability {args.lie_probability:g}, one row of it; {args.prompts} "
          f"prompts x {args.tokens} tokens, chunks of {args.chunk_steps} steps; {args.repeats} seed(s) per cell")
    rows = table(results, args.kinds, settings)
    print_table(rows)
    told = sum(t.told for t in results.values())
    checked = sum(t.checked for t in results.values())
    pinned = sum(t.pinned for t in results.values())
    wrong = sum(t.wrong_records for t in results.values())
    print(f"checked lies pinned exactly to (edge, layer, expert, sequence, position): {pinned}/{checked} "
          f"({percent(pinned / checked if checked else float('nan'))}); lies told {told}; wrong records {wrong}")
    print(f"wall {time.perf_counter() - started:.0f} s; load average (1, 5, 15 min) before: "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after: {load_after[0]:.2f} "
          f"{load_after[1]:.2f} {load_after[2]:.2f} on {os.cpu_count()} cores; torch threads {args.threads}")
    with open(out / "generation_detection.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    plot(results, args.kinds, settings, out / "generation_detection.png")
    print(f"wrote {out / 'generation_detection.png'} and {out / 'generation_detection.csv'}")


if __name__ == "__main__":
    main()
