"""Generation among colluding attackers (issue 25): the same prompt decoded three ways on one model.

- **clean**: in one process, no protocol (``lm.decoding.engine.complete``);
- **B-MoE**: verified generation (``run/generation.open_session``) on M edges of which ``colluders`` lie, all with
  the same attack (so their wrong answers agree bit for bit, as colluders' would);
- **unverified**: the same edges, each (layer, expert) call answered by one of them (the fast path,
  ``protocol/generation/fast_path.FastPath``, its primaries drawn again every ``chunk_steps`` steps as B-MoE's
  are) and nothing checked: what a deployment that trusts its peers generates.

Colluders fewer than a third of the edges cannot reach a quorum (more than half the enrolled edges), and with
``replicas`` at least ``colluders`` a lying primary always has an honest replica (the other colluders are fewer
than its replicas), so every lie on the fast path is disputed, located and rolled back: B-MoE's tokens are the
clean ones. The unverified deployment uses every lie it is told.

Must not know: the command line, tokenizers (text comes from the ``decode`` function given), HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bmoe.edge.attacks.expert_output import OUTPUT_ATTACKS, make_output_attack
from bmoe.lm.decoding.engine import Completion, DecodingEngine, complete
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer
from bmoe.protocol.generation.edges import GenerationEdge
from bmoe.protocol.generation.fast_path import FastPath
from bmoe.run.generation import GenerationSettings, open_session


class ColludersError(ValueError):
    """Settings the demonstration cannot run with."""


@dataclass(frozen=True)
class ColludersSettings:
    """Who colludes, how, and how B-MoE checks."""

    edges: int = 10  # M
    colluders: int = 3  # edges lying with the same attack (30 % of 10)
    attack: str = "swap"  # a kind of edge/attacks/expert_output.py; every colluder answers every call with it
    replicas: int = 3  # r re-computing edges per call (>= colluders: a lying primary always meets an honest one)
    chunk_steps: int = 16
    seed: int = 0  # the session's keys and draws, and which edges collude

    def __post_init__(self) -> None:
        for name in ("edges", "colluders", "replicas", "chunk_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ColludersError(f"{name} must be an integer >= 1, got {value!r}")
        if self.edges < 3:
            raise ColludersError(f"need at least 3 edges, got {self.edges}")
        if 3 * self.colluders >= self.edges:
            raise ColludersError(f"{self.colluders} colluders of {self.edges} edges are not fewer than a third")
        if self.attack not in OUTPUT_ATTACKS:
            raise ColludersError(f"unknown attack {self.attack!r}; the kinds are {', '.join(OUTPUT_ATTACKS)}")

    def colluding_edges(self) -> list[int]:
        """The colluders' indices among the edges, drawn from the seed."""
        chosen = np.random.default_rng(self.seed).choice(self.edges, size=self.colluders, replace=False)
        return sorted(int(i) for i in chosen)


@dataclass(frozen=True)
class ColludersOutcome:
    """The three generations' tokens and text, and what B-MoE recorded."""

    colluders: list[int]
    clean: list[int]
    verified: list[int]
    unverified: list[int]
    texts: dict[str, str]  # "clean", "verified", "unverified" -> text (empty without a decode function)
    accused: int  # colluders B-MoE recorded a dissent against
    rollbacks: int  # sequences B-MoE rolled back
    lies_unverified: int  # lies the unverified deployment used

    @property
    def verified_is_clean(self) -> bool:
        return self.verified == self.clean

    @property
    def unverified_is_clean(self) -> bool:
        return self.unverified == self.clean


def run_colluders(model: MoETransformer, prompt: list[int], params: SamplingParams, settings: ColludersSettings,
                  decode: Callable[[list[int]], str] | None = None) -> ColludersOutcome:
    """Decode ``prompt`` clean, through B-MoE among the colluders, and unverified among them."""
    colluders = settings.colluding_edges()
    clean = complete(model, prompt, params, decode)
    attacks = {edge: make_output_attack(settings.attack, model, seed=settings.seed) for edge in colluders}
    session = open_session(model, GenerationSettings(edges=settings.edges, replicas=settings.replicas,
                                                     chunk_steps=settings.chunk_steps, seed=settings.seed,
                                                     max_batch=1), attacks.get, decode)
    request = session.decoding.submit(prompt, params)
    while session.decoding.busy:
        session.decoding.step()
    verified = session.decoding.result(request)
    # the same edges (keys, experts, attacks) with nothing checked
    liars = {edge: make_output_attack(settings.attack, model, seed=settings.seed) for edge in colluders}
    unverified = _unverified(model, prompt, params, {edge.address: GenerationEdge(edge.identity, edge.experts,
                                                                                  liars.get(index))
                                                     for index, edge in enumerate(session.edges)}, settings, decode)
    stats = session.decoding.stats
    return ColludersOutcome(colluders, clean.tokens, verified.tokens, unverified.tokens,
                            {"clean": clean.text, "verified": verified.text, "unverified": unverified.text},
                            len(stats.accused), stats.rollbacks, sum(len(liar.strikes) for liar in liars.values()))


def _unverified(model: MoETransformer, prompt: list[int], params: SamplingParams, edges: dict[str, GenerationEdge],
                settings: ColludersSettings, decode: Callable[[list[int]], str] | None) -> Completion:
    """``prompt`` decoded with each call answered by its primary among ``edges``, nothing checked."""
    fast = FastPath(edges, model.config.num_local_experts, settings.seed)
    engine = DecodingEngine(model, fast, decode, max_batch=1)
    request = engine.submit(prompt, params)
    step = 0
    while engine.busy:
        if step % settings.chunk_steps == 0:
            fast.begin(step // settings.chunk_steps, list(edges))
        engine.step()
        step += 1
    return engine.result(request)
