"""A language model among colluding attackers: B-MoE against the traditional deployment (``bmoe lm attacks``).

For each reading of the paper's Gaussian attack (``edge/attacks/readings.py``: fresh noise on the downloaded
weights each time an edge strikes, or noise that stays in its copy and accumulates), the same model is trained
clean and among a share of colluding attackers that strike with probability p, through B-MoE (M edges, every
call compared) and through the traditional deployment (one edge per (layer, expert), unverified). The validation
loss curves go to ``lm_attacks.json`` / ``.csv`` and one PNG per reading; the claim checked is that B-MoE's
attacked run ends on its clean run's model (the same CIDs, so the same validation loss).

Must not know: click.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bmoe.edge.attacks.readings import READINGS
from bmoe.experiments.reproduction.figures import write_table
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.session import LMSession
from bmoe.run.lm.text import LMText

FRAMEWORK_LABEL = {"bmoe": "B-MoE", "traditional": "traditional"}


@dataclass(frozen=True)
class AttackSettings:
    lm: Mapping[str, Any]  # the language model's settings (steps, validation_every, ...)
    edges: int = 10  # B-MoE's fleet; the traditional deployment has one edge per (layer, expert)
    ratio: float = 0.3  # the share of colluding attackers
    probability: float = 0.2  # each attacker strikes a call with this probability
    seed: int = 0


def _config(settings: AttackSettings, framework: str, attack: str | None) -> LMRunConfig:
    layers, experts = settings.lm.get("layers", 4), settings.lm.get("lm_experts", 8)
    run: dict[str, Any] = {"framework": framework, "seed": settings.seed, "difficulty": 0,
                           "num_edges": settings.edges if framework == "bmoe" else layers * experts}
    if attack is not None:
        run.update(malicious_ratio=settings.ratio, attack=attack, collude=True,
                   attack_params={"probability": settings.probability})
    return LMRunConfig.build(dict(settings.lm), run)


def run_unit(settings: AttackSettings, text: LMText, framework: str, reading: str | None) -> dict[str, Any]:
    """One training run: its validation curve, records, and the model's CIDs."""
    attack = READINGS[reading] if reading is not None else None
    session = LMSession(_config(settings, framework, attack), text.tokenizer.to_bytes(), text.tokenizer.vocab_size,
                        text.train_ids, text.validation_ids, keep_objects=False)
    history = session.train()
    state = session.node.view()
    return {"framework": framework, "reading": reading or "clean", "curve": history.validation,
            "misbehaviour": sum(r["misbehaviour"] for r in history.rounds), "gate_cid": state.gate_cid,
            "expert_cids": list(state.expert_cids)}


def run_attacks(settings: AttackSettings, text: LMText, out: Path,
                progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """Every unit (clean, then each reading, for both frameworks), the table and the plots in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    units = []
    for framework in ("bmoe", "traditional"):
        for reading in (None, *READINGS):
            progress(f"{framework} {reading or 'clean'}")
            units.append(run_unit(settings, text, framework, reading))
    rows = [{"framework": u["framework"], "reading": u["reading"], "step": point["step"],
             "validation_loss": point["loss"], "misbehaviour": u["misbehaviour"]}
            for u in units for point in u["curve"]]
    write_table(out, "lm_attacks", rows)
    for reading in READINGS:
        plot_reading(units, reading, settings, out / f"lm_attacks_{reading}.png")
    return units


def clean_model_kept(units: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    """Per reading: whether B-MoE's attacked run ended on its clean run's model (same CIDs)."""
    clean = next(u for u in units if u["framework"] == "bmoe" and u["reading"] == "clean")
    return {u["reading"]: (u["gate_cid"], u["expert_cids"]) == (clean["gate_cid"], clean["expert_cids"])
            for u in units if u["framework"] == "bmoe" and u["reading"] != "clean"}


def plot_reading(units: Sequence[Mapping[str, Any]], reading: str, settings: AttackSettings, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for unit in units:
        if unit["reading"] not in ("clean", reading):
            continue
        attacked = unit["reading"] != "clean"
        label = f"{FRAMEWORK_LABEL[unit['framework']]}, {'attacked' if attacked else 'clean'}"
        ax.plot([p["step"] for p in unit["curve"]], [p["loss"] for p in unit["curve"]], label=label,
                linestyle="--" if attacked else "-", marker="o" if unit["framework"] == "bmoe" else "s", markersize=3)
    ax.set_xlabel("round")
    ax.set_ylabel("validation loss (nats per token)")
    ax.set_title(f"{settings.ratio:.0%} colluding attackers, p = {settings.probability} ({reading} noise)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
