"""The dynamic price of a generated token against the load, from a real paid verified generation (issue 26, part 3).

A paid session (``run/payments.py``) of M edges (``--edges``, 5) serves ``LMConfig``'s default model (4 layers,
d = 128, 8 experts top-2, a 65-token vocabulary, random weights: the price does not depend on what the weights say)
with a batch of at most ``--max-batch`` sequences (8). Requests arrive in waves (``--waves``: how many arrive
together, each wave once the previous one has finished), each for a seeded random number of tokens in [4,
``--tokens``], so the batch fills and drains and the utilisation of each verified chunk varies. Every chunk is
sealed with its ``settlement``; the script reads them back from the chain (the load the validator recorded, the
price the ledger accepted), prints them, and plots price against utilisation with the rule's curve
(``ledger/pricing.py``) and its floor and cap, and the price chunk by chunk beside the load.

    python benchmarks/price_vs_load.py [--out docs/img/price_vs_load.png] [--waves 1,3,8,2,6,4,8,1,5,7]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path
from typing import Any

from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.pricing import Pricing, price_per_token, utilisation_bp
from bmoe.lm.config import LMConfig
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import build_model
from bmoe.run.generation import GenerationSettings, open_session
from bmoe.run.payments import PaymentTerms, bill

PRICING = Pricing(base=100, floor=60, cap=220)  # idle: max(60, 50) = 60; full: min(220, 250) = 220


def run(edges: int, max_batch: int, waves: list[int], tokens: int, chunk_steps: int, seed: int,
        directory: Path) -> list[dict[str, Any]]:
    """Serve the waves; every settlement sealed, in chain order."""
    model = build_model(LMConfig(vocab_size=65), seed=seed).eval()
    payers = [f"requester-{index}" for index in range(4)]
    terms = PaymentTerms(PRICING, {payer: 10**9 for payer in payers})
    settings = GenerationSettings(edges=edges, chunk_steps=chunk_steps, seed=seed, max_batch=max_batch,
                                  payments=terms)
    session = open_session(model, settings, run_dir=directory)
    rng = random.Random(seed)
    request = 0
    for wave in waves:
        for _ in range(wave):
            prompt = [rng.randrange(1, model.config.vocab_size) for _ in range(rng.randint(2, 6))]
            params = SamplingParams(max_tokens=rng.randint(4, tokens), temperature=0.8, seed=request)
            session.decoding.submit(prompt, params, payer=payers[request % len(payers)])
            request += 1
        while session.decoding.busy:
            session.decoding.step()
    for row in bill(session.node.view()):
        print(f"{row['role']:>9} {row['account'][:16]:<16} paid {row['paid']:>8} earned {row['earned']:>8}")
    with ChainStore(directory / "chain.sqlite", readonly=True) as chain:
        return [dict(tx.payload) for block in chain.iter_blocks() for tx in block.transactions
                if tx.kind == "settlement"]


def plot(settlements: list[dict[str, Any]], capacity: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pricing = Pricing(**{**PRICING.spec(), "capacity": capacity})
    load = [utilisation_bp(s["active"], capacity) / 100 for s in settlements]
    price = [s["price"] for s in settlements]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    curve = list(range(capacity + 1))
    left.plot([utilisation_bp(a, capacity) / 100 for a in curve], [price_per_token(pricing, a) for a in curve],
              color="grey", label="the rule: base x (1/2 + 2u^2), bounded")
    left.axhline(pricing.floor, color="grey", linestyle=":", label=f"floor {pricing.floor}, cap {pricing.cap}")
    left.axhline(pricing.cap, color="grey", linestyle=":")
    left.scatter(load, price, color="tab:blue", zorder=3, label=f"{len(settlements)} sealed chunks")
    left.set_xlabel("utilisation of the batch in the chunk (%)")
    left.set_ylabel("price per generated token (units)")
    left.legend(loc="upper left", fontsize=8)
    chunks = list(range(len(settlements)))
    right.step(chunks, price, where="mid", color="tab:blue", label="price")
    right.set_xlabel("sealed chunk (chain order)")
    right.set_ylabel("price per token (units)")
    twin = right.twinx()
    twin.step(chunks, load, where="mid", color="tab:orange", alpha=0.6, label="utilisation")
    twin.set_ylabel("utilisation (%)")
    right.set_title("price follows the load, chunk by chunk", fontsize=9)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/price_vs_load.png"))
    parser.add_argument("--edges", type=int, default=5)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--waves", default="1,3,8,2,6,4,8,1,5,7")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--chunk-steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    waves = [int(w) for w in args.waves.split(",")]
    with tempfile.TemporaryDirectory() as directory:
        settlements = run(args.edges, args.max_batch, waves, args.tokens, args.chunk_steps, args.seed,
                          Path(directory) / "ledger")
    print("chunk  active  utilisation  price  tokens  charged")
    for s in settlements:
        print(f"{s['chunk']:>5}  {s['active']:>6}  {utilisation_bp(s['active'], args.max_batch) / 100:>10.1f}%  "
              f"{s['price']:>5}  {sum(c['tokens'] for c in s['charges']):>6}  "
              f"{sum(c['amount'] for c in s['charges']):>7}")
    plot(settlements, args.max_batch, args.out)


if __name__ == "__main__":
    main()
