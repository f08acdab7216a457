"""Quality evaluation (PolyLink's TIQE, ``lm/quality/``) beside per-expert verification, on the same attacks.

SmolLM2-135M-Instruct as an MoE (8 experts a layer, all active; fetched into the cache first if absent: a tiny
model's text would say nothing about quality, so there is no fallback to one) answers ``--prompts`` short chat
prompts, greedy, ``--tokens`` tokens each, in one batch. For honest generation and for each attack of
``edge/attacks/expert_output.py`` (noise at several sizes, int8 and int4 re-quantised experts, a swapped expert,
a lazy zero output), one edge of ``--edges`` lies on every call it serves, and:

- **quality**: the responses generated *unverified* among that liar (``AttackedExperts``, each expert call struck
  with probability 1/edges: the liar's share of the calls) are scored by a :class:`QualityJudge` of three honest
  validators running the all-MiniLM-L6-v2 relevance scorer and one lazy validator reporting a fixed score (flagged
  misjudging); a response is flagged ``low`` below the 5th percentile of the honest responses' scores. Printed:
  the responses whose text the attack changed, the responses flagged, the median score.
- **verification**: the same prompts through a verified session (``run/generation.open_session``, r = 1, every
  call checked) with that liar among the edges: the chunk calls it lied on (the distinct (chunk, layer, expert)
  its attack struck: the ground truth), the lies recorded against it (calls of the sealed chunks'
  records where its signed commitment is not the accepted output), and whether the released text is the honest
  text.
- **cost**: CPU seconds per response (one torch thread; CPU time, not wall time, because the machine is shared) of
  the judge (every validator), and of verification (the verified session's CPU time less the plain generation's,
  per response).

The ``mixed`` condition is honest mixed hardware: the edge tells no lie but computes its calls with float64
accumulation cast to float32 (``edge/profiles.py``'s ``f64``: other hardware's rounding); its "lies" are the calls
whose bits differ from the float32 answer, and what verification records against it are false accusations (bit
for bit comparison; generation has no tolerance comparison). With ``--judge``, SmolLM2-135M-Instruct
(``lm/quality/llm_judge.py``, its bias calibrated as the 5th percentile of its margins on the honest responses)
also answers yes/no on every response, and a second quality judge asks it within ``--band`` of the threshold.

    python benchmarks/bench_quality_vs_verification.py [--prompts 8] [--tokens 8] [--edges 5] [--threads 1] [--show]
        [--conditions honest,mixed,...] [--judge] [--band 0.1]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from bmoe.edge.attacks.expert_output import AttackedExperts, make_output_attack
from bmoe.edge.profiles import get_profile
from bmoe.lm.decoding.engine import DecodingEngine
from bmoe.lm.decoding.expert_calls import ModelExperts
from bmoe.lm.decoding.rows import stable_expert
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.pretrained import PretrainedLM, load_pretrained
from bmoe.lm.quality.judge import QualityJudge, QualityValidator, calibrate_threshold
from bmoe.lm.quality.llm_judge import LanguageModelJudge, pretrained_judge
from bmoe.lm.quality.scorers import FixedReport, RelevanceScorer
from bmoe.lm.quality.sentence_encoder import load_sentence_encoder
from bmoe.protocol.generation.records import decode_records
from bmoe.run.generation import GenerationSettings, open_session

PROMPTS = ["What is the capital of France?", "Give me three tips for sleeping well.",
           "Explain what photosynthesis is in one sentence.", "Write a short poem about the sea.",
           "How do I boil an egg?", "Why is the sky blue?", "Name three primary colours.",
           "What does a computer's CPU do?"]
ATTACKS = [("noise", 1e-3), ("noise", 1e-1), ("noise", 1.0), ("int8", None), ("int4", None), ("swap", None),
           ("zero", None), ("mixed", None)]


@dataclass
class Row:
    condition: str
    changed: int = 0  # responses whose text differs from the honest one (unverified)
    flagged: int = 0  # responses the quality layer flags low (unverified)
    median_score: float = 0.0
    misjudging: int = 0  # validator reports flagged misjudging
    lies_told: int = 0
    lies_recorded: int = 0
    verified_clean: int = 0  # verified responses whose text is the honest one
    judge_s: float = 0.0  # per response
    verify_s: float = 0.0  # per response, beyond plain generation
    model_no: int = 0  # responses the judge model answers no (--judge)
    flagged_with_model: int = 0  # responses flagged low when the judge model decides within the band (--judge)
    model_s: float = 0.0  # the judge model's CPU s per response (--judge)


class OtherNumerics:
    """An honest edge on other hardware: each call it serves (a seeded draw below ``probability``) computed under
    ``edge/profiles.py``'s ``f64`` profile (float64 accumulation, cast to float32). No lie, other rounding: a call
    whose bits differ from the float32 answer is noted in ``strikes`` (what bit-for-bit verification disputes)."""

    def __init__(self, model: Any, probability: float, seed: int = 11) -> None:
        self.model, self.probability, self.profile = model, probability, get_profile("f64")
        self.generator = torch.Generator().manual_seed(seed)
        self.experts: dict[tuple[int, int], torch.nn.Module] = {}
        self.strikes: list[tuple[int, int]] = []

    def __call__(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        if float(torch.rand((), generator=self.generator)) >= self.probability:
            return outputs
        key = (layer, expert)
        if key not in self.experts:
            module = self.model.layers[layer].block_sparse_moe.experts[expert]
            self.experts[key] = self.profile.prepare(copy.deepcopy(module))
        with torch.no_grad():
            answer = self.profile.forward(lambda x: stable_expert(self.experts[key], x), inputs)  # (n, d)
        if not torch.equal(answer, outputs):
            self.strikes.append(key)
        return answer


def generate_plain(lm: PretrainedLM, prompts: list[list[int]], params: SamplingParams,
                   attack: object | None) -> tuple[list[str], float]:
    """Every prompt decoded together, the experts answered by the model (struck by ``attack``); texts, seconds."""
    caller = ModelExperts(lm.model)
    engine = DecodingEngine(lm.model, AttackedExperts(caller, attack) if attack else caller, lm.tokenizer.decode,
                            max_batch=len(prompts))
    start = time.process_time()
    requests = [engine.submit(prompt, params) for prompt in prompts]
    while engine.busy:
        engine.step()
    return [engine.result(request).text for request in requests], time.process_time() - start


class ChunkTagged:
    """An attack that notes the chunk of each of its strikes: the chunks sealed so far when it struck (a chunk's
    fast-path calls, replicas and disputes all run before it is sealed)."""

    def __init__(self, attack: Any) -> None:
        self.attack, self.decoding, self.lies = attack, None, set()  # lies: (chunk, layer, expert)

    def __call__(self, layer: int, expert: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        before = len(self.attack.strikes)
        answer = self.attack(layer, expert, inputs, outputs)
        if len(self.attack.strikes) > before:
            self.lies.add((len(self.decoding.sealed), layer, expert))
        return answer


def generate_verified(lm: PretrainedLM, prompts: list[list[int]], params: SamplingParams, edges: int,
                      attack: Any | None) -> tuple[list[str], float, int, int]:
    """Every prompt through a verified session whose last edge runs ``attack``; texts, CPU seconds, the chunk
    calls it lied on, and those recorded against it in the sealed chunks' records."""
    liar = edges - 1
    tagged = ChunkTagged(attack) if attack is not None else None
    session = open_session(lm.model, GenerationSettings(edges=edges, replicas=1, probability=1.0, seed=7),
                           {liar: tagged}.get if tagged else None, lm.tokenizer.decode)
    decoding = session.decoding
    if tagged is not None:
        tagged.decoding = decoding
    start = time.process_time()
    requests = [decoding.submit(prompt, params) for prompt in prompts]
    while decoding.busy:
        decoding.step()
    seconds = time.process_time() - start
    address = session.edges[liar].address
    recorded = 0
    for sealed in decoding.sealed:
        for call in decode_records(session.store.get(sealed.records)).calls:
            made = call.commitments.get(address)
            recorded += made is not None and made["outputs"] != call.accepted
    told = len(tagged.lies) if tagged is not None else 0
    return [decoding.result(request).text for request in requests], seconds, told, recorded


def judged_by_model(model: LanguageModelJudge, texts: list[str], answers: list[str]) -> tuple[list[int], float]:
    """The judge model's margins on every response, and its CPU seconds per response."""
    start = time.process_time()
    margins = [model(prompt, answer).margin for prompt, answer in zip(texts, answers, strict=True)]
    return margins, (time.process_time() - start) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--edges", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--show", action="store_true", help="print each unverified response and its score")
    parser.add_argument("--conditions", default=None, help="the rows to run, e.g. honest,mixed (default: every one)")
    parser.add_argument("--judge", action="store_true", help="ask SmolLM2-135M-Instruct too (lm/quality/llm_judge.py)")
    parser.add_argument("--band", type=float, default=0.1, help="[--judge] the band around the threshold")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    lm = load_pretrained("smollm2-135m", experts=8)
    scorer = RelevanceScorer(load_sentence_encoder())
    validators = [QualityValidator(f"validator-{i}", scorer) for i in range(3)]
    judge = QualityJudge([*validators, QualityValidator("lazy-validator", FixedReport(1.0, "fixed/1.0"))])
    texts = PROMPTS[:args.prompts]
    prompts = [lm.chat_prompt([{"role": "user", "content": text}]) for text in texts]
    params = SamplingParams(max_tokens=args.tokens, temperature=0.0, eos_token_id=lm.stop_token_ids[0])

    honest, plain_s = generate_plain(lm, prompts, params, None)
    start = time.process_time()
    honest_verdicts = [judge.score(prompt, answer) for prompt, answer in zip(texts, honest, strict=True)]
    judge_s = (time.process_time() - start) / len(texts)
    threshold = calibrate_threshold([v.median_score for v in honest_verdicts if v.median_score is not None])
    judge = judge.with_threshold(threshold)
    model_judge, with_model = None, None
    if args.judge:
        model_judge = pretrained_judge()
        honest_margins = judged_by_model(model_judge, texts, honest)[0]
        model_judge.bias = round(calibrate_threshold(honest_margins))  # micro-units: honest margins' 5th percentile
        with_model = QualityJudge(judge.validators, threshold=threshold, band=args.band, fallback=model_judge)

    rows = []
    names = [kind if scale is None else f"{kind} {scale:g}" for kind, scale in [("honest", None), *ATTACKS]]
    chosen = set(names if args.conditions is None else args.conditions.split(","))
    for (kind, scale), name in zip([("honest", None), *ATTACKS], names, strict=True):
        if name not in chosen:
            continue
        row = Row(name)

        def attack(probability: float, kind: str = kind, scale: float | None = scale) -> object | None:
            if kind == "honest":
                return None
            if kind == "mixed":
                return OtherNumerics(lm.model, probability)
            extra = {"scale": scale} if scale is not None else {}
            return make_output_attack(kind, lm.model, seed=11, probability=probability, **extra)

        answers = honest if kind == "honest" else generate_plain(lm, prompts, params, attack(1 / args.edges))[0]
        start = time.process_time()
        verdicts = [judge.score(prompt, answer) for prompt, answer in zip(texts, answers, strict=True)]
        row.judge_s = (time.process_time() - start) / len(texts)
        row.changed = sum(a != h for a, h in zip(answers, honest, strict=True))
        row.flagged = sum(v.flag == "low" for v in verdicts)
        row.median_score = statistics.median(v.median_score for v in verdicts if v.median_score is not None)
        row.misjudging = sum(len(v.misjudging) for v in verdicts)
        if model_judge is not None and with_model is not None:
            margins, row.model_s = judged_by_model(model_judge, texts, answers)
            row.model_no = sum(margin <= model_judge.bias for margin in margins)
            row.flagged_with_model = sum(with_model.score(prompt, answer).flag == "low"
                                         for prompt, answer in zip(texts, answers, strict=True))
        if args.show:
            for answer, verdict in zip(answers, verdicts, strict=True):
                print(f"    [{name}] {verdict.median_score:.3f} {verdict.flag}: {answer!r}", flush=True)
        verified, verified_s, row.lies_told, row.lies_recorded = generate_verified(lm, prompts, params, args.edges,
                                                                                  attack(1.0))
        row.verified_clean = sum(v == h for v, h in zip(verified, honest, strict=True))
        row.verify_s = (verified_s - plain_s) / len(texts)
        rows.append(row)
        print(f"  {name}: done", flush=True)

    n = len(texts)
    print(f"\nSmolLM2-135M (8 experts, all active), {n} chat prompts, greedy, {args.tokens} tokens; one liar among "
          f"{args.edges} edges; threshold {threshold:.4f} (5th percentile of the honest scores); judge "
          f"{scorer.name}, 3 honest validators + 1 lazy; honest generation {plain_s:.1f} CPU s for {n} responses, "
          f"the judge {judge_s:.3f} CPU s a response on the honest ones")
    print("| condition | text changed (unverified) | quality flags low | median score | misjudging reports | "
          "calls lied on | lies recorded | verified text honest | judge CPU s/response | verification CPU s/response |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.condition} | {row.changed}/{n} | {row.flagged}/{n} | {row.median_score:.3f} | "
              f"{row.misjudging}/{4 * n} | {row.lies_told} | {row.lies_recorded} | {row.verified_clean}/{n} | "
              f"{row.judge_s:.3f} | {row.verify_s:.2f} |")
    if model_judge is not None:
        print(f"\njudge model {model_judge.name}, bias {model_judge.bias / 1e6:.3f} (5th percentile of its honest "
              f"margins), band {args.band} around the threshold")
        print("| condition | judge model says no | flagged low, the judge model deciding within the band | "
              "judge model CPU s/response |")
        print("|---|---|---|---|")
        for row in rows:
            print(f"| {row.condition} | {row.model_no}/{n} | {row.flagged_with_model}/{n} | {row.model_s:.2f} |")
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; threads {args.threads}")


if __name__ == "__main__":
    main()
