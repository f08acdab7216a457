"""``bmoe demo --platform``: PolyLink's platform on bmoe in one run (docs/platform.md).

A heterogeneous, geo-distributed fleet serves a language model across devices, every expert call verified, and
requesters pay for the tokens:

- **the fleet** (:data:`FLEET`): devices that give expert weights different memory (fractions of the model's expert
  bytes: a server holds the whole model, workstations and a laptop part of it, a phone too little for any expert)
  and sit at different network distances (each call waits its round trip, emulated in-process). Each declares its
  capability in a transaction it signs; the ledger records the placement of every (layer, expert) slot on
  :data:`HOLDERS` devices that can hold it (``ledger/placement.py``); each device fetches its placed experts by CID;
- **a lying device**: one workstation adds noise to every expert output it computes; its first lie is disputed among
  the slot's holders, recorded with the evidence, its stake slashed, and the fleet re-placed around it;
- **the fleet changes mid-run**: a server joins during the second chunk and the laptop leaves during the third, each
  change recorded and re-placed between chunks while generation goes on;
- **the bill**: two requesters with deposits pay per generated token at a price that moves with the batch's load
  (``ledger/pricing.py``); the edges earn per accepted expert call, the validator per sealed chunk; a request its
  payer cannot cover is refused before anything is generated.

The chain and the store go to ``out``, so ``bmoe audit``, ``bmoe records`` and ``bmoe explorer`` read them after.
The model is a seeded random-weight MoE by default (nothing to download), or SmolLM2-135M-Instruct as an MoE.

Must not know: the CLI, printing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bmoe.edge.attacks.expert_output import make_output_attack
from bmoe.ledger.economics import Balance
from bmoe.ledger.pricing import Pricing
from bmoe.lm.config import LMConfig
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer, build_model
from bmoe.protocol.generation.edges import OutputAttack
from bmoe.run.generation import GenerationSettings
from bmoe.run.payments import PaidDecoding, PaymentRequired, PaymentTerms, bill
from bmoe.run.placement import EdgeSpec, PlacedSession, open_placed_session

MB = 1 << 20
HOLDERS = 3  # holders per slot: a dispute needs more than half of them, so one liar among three is outvoted
STAKE = 1000  # each edge's stake; a proven dissent costs 100 (the run's default slash)
CHUNK_STEPS = 4


@dataclass(frozen=True)
class Device:
    name: str
    fraction: float  # of the model's expert bytes it gives to expert weights
    rtt_ms: float  # its network round trip from the validator


FLEET = (Device("eu-server", 1.1, 5), Device("us-workstation", 0.8, 40), Device("asia-workstation", 0.8, 90),
         Device("eu-laptop", 0.6, 15), Device("sa-server", 1.0, 70), Device("phone", 0.003, 30))
JOINER = Device("us-server", 1.1, 45)
LIAR = "us-workstation"
LEAVER = "eu-laptop"
REQUESTS = (("alice", 0), ("bob", 1), ("alice", 2), ("alice", 3), ("bob", 4))  # (payer, prompt index), in order
DEPOSITS = {"alice": 200_000, "bob": 4_000}  # a request reserves max_tokens x the cap price: bob can cover one
PROMPTS = ("What is the capital of France?", "Give me three tips for sleeping well.", "Why is the sky blue?",
           "Explain photosynthesis in one sentence.", "Name a prime number larger than ten.")


@dataclass
class PlatformDemo:
    """What the demo did: the session, each device's name by address, the requests and their fates."""

    placed: PlacedSession
    names: dict[str, str]  # address -> device name
    devices: dict[str, Device]  # device name -> device
    whole: int  # the model's expert bytes
    served: list[dict[str, Any]]  # one per request: payer, tokens, text (or refused: the reason)
    model_name: str

    @property
    def head_hash(self) -> str:
        return self.placed.session.head_hash

    def fleet_rows(self) -> list[dict[str, Any]]:
        """Each device: memory, round trip, slots held at the end, bytes fetched, calls answered, its fate."""
        placed, state = self.placed, self.placed.session.node.view()
        accused = set(placed.session.decoding.stats.accused)
        rows = []
        for address, name in self.names.items():
            device = self.devices[name]
            held = sum(address in edges for edges in placed.holders)
            fetched = placed.holdings[address].bytes_fetched
            if address in accused:
                fate = "lied: slashed, out"
            elif address in placed.left:
                fate = "left mid-run"
            elif name == JOINER.name:
                fate = "joined mid-run"
            elif not fetched:
                fate = "too small"
            else:
                fate = "serving"
            balance = state.balances.get(address)
            rows.append({"device": name, "memory_mb": placed.holdings[address].memory / MB, "rtt_ms": device.rtt_ms,
                         "slots": held, "fetched_mb": fetched / MB, "calls": placed.pool[address].calls,
                         "stake": balance.balance if isinstance(balance, Balance) else None, "fate": fate})
        return rows

    def bill_rows(self) -> list[dict[str, Any]]:
        """Every participant's deposited, paid, earned and balance, named."""
        validator = self.placed.session.validator.address
        rows = []
        for row in bill(self.placed.session.node.view()):
            account = row["account"]
            name = self.names.get(account, "validator" if account == validator else account)
            rows.append({**row, "name": name})
        return rows

    def summary(self) -> dict[str, Any]:
        stats = self.placed.session.decoding.stats
        return {"model": self.model_name, "head_hash": self.head_hash, "placement_epochs": self.placed.epoch,
                "chunks": stats.chunks, "calls": stats.calls, "checked": stats.checked, "disputes": stats.disputes,
                "rollbacks": stats.rollbacks, "fleet": self.fleet_rows(), "bill": self.bill_rows(),
                "requests": self.served}


def demo_model(model_name: str | None, seed: int) -> tuple[MoETransformer, list[list[int]], Any, int | None]:
    """The served model, the prompts' token ids, a decode function and its end-of-sequence id."""
    if model_name is None:
        model = build_model(LMConfig(vocab_size=65), seed=seed).eval()  # 4 layers x 8 experts, random weights
        rng = random.Random(seed)
        prompts = [[rng.randrange(1, 65) for _ in range(rng.randint(3, 8))] for _ in PROMPTS]
        return model, prompts, None, None
    from bmoe.lm.pretrained import load_pretrained

    lm = load_pretrained(model_name, experts=8)
    prompts = [lm.chat_prompt([{"role": "user", "content": text}]) for text in PROMPTS]
    return lm.model, prompts, lm.tokenizer.decode, lm.stop_token_ids[0]


def expert_bytes(model: MoETransformer) -> int:
    return sum(p.numel() * p.element_size() for name, p in model.named_parameters() if ".experts." in name)


def run_platform_demo(out: Path, seed: int = 0, model_name: str | None = None, tokens: int = 12,
                      distance: float = 1.0) -> PlatformDemo:
    """Serve :data:`REQUESTS` on :data:`FLEET` (module docstring); the chain and store in ``out``. ``distance``
    scales every device's round trip (0: all on loopback, no wait)."""
    torch.manual_seed(seed)
    model, prompts, decode, eos = demo_model(model_name, seed)
    whole = expert_bytes(model)
    pool = len(FLEET) + 1  # the joiner's key is enrolled in the genesis, unused until it declares
    terms = PaymentTerms(Pricing(base=100, floor=50, cap=250), DEPOSITS)
    settings = GenerationSettings(edges=pool, replicas=1, chunk_steps=CHUNK_STEPS, seed=seed, stake=STAKE,
                                  max_batch=len(REQUESTS), payments=terms)
    liar = next(index for index, device in enumerate(FLEET) if device.name == LIAR)

    def attack_for(index: int) -> OutputAttack | None:
        return make_output_attack("noise", model, seed=seed) if index == liar else None

    specs = [EdgeSpec(int(device.fraction * whole), delay=distance * device.rtt_ms / 1000) for device in FLEET]
    placed = open_placed_session(model, settings, specs, HOLDERS, attack_for, decode, out)
    names = {address: device.name for address, device in zip(placed.specs, FLEET, strict=True)}
    decoding = PaidDecoding(placed.session)
    served: list[dict[str, Any]] = []
    requests: dict[int, dict[str, Any]] = {}
    for payer, index in REQUESTS:
        params = SamplingParams(max_tokens=tokens, temperature=0.0, eos_token_id=eos)
        try:
            request = decoding.submit(prompts[index], params, payer=payer)
        except PaymentRequired as refusal:
            served.append({"payer": payer, "prompt": PROMPTS[index], "refused": str(refusal)})
            continue
        requests[request] = {"payer": payer, "prompt": PROMPTS[index]}
        served.append(requests[request])
    step = 0
    while decoding.busy:
        if step == CHUNK_STEPS + 1:  # during the second chunk: recorded when it ends
            joiner = EdgeSpec(int(JOINER.fraction * whole), delay=distance * JOINER.rtt_ms / 1000)
            names[placed.join(joiner)] = JOINER.name
        if step == 2 * CHUNK_STEPS + 1:  # during the third
            placed.leave(next(address for address, name in names.items() if name == LEAVER))
        decoding.step()
        step += 1
    for request, entry in requests.items():
        result = decoding.result(request)
        entry["tokens"] = len(result.tokens)
        entry["text"] = result.text if decode is not None else None
        decoding.release(request)
    devices = {device.name: device for device in (*FLEET, JOINER)}
    return PlatformDemo(placed, names, devices, whole, served, model_name or "random-moe (seeded, 4x8 experts)")


__all__: Sequence[str] = ("FLEET", "JOINER", "PlatformDemo", "run_platform_demo")
