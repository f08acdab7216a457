"""The language model among colluding attackers: B-MoE keeps its clean run's model, the traditional deployment
does not, and the table and plots are written."""

from __future__ import annotations

import json
from pathlib import Path

from bmoe.experiments.lm_attacks import AttackSettings, clean_model_kept, run_attacks
from bmoe.lm.char_tokenizer import CharTokenizer
from bmoe.run.lm.text import LMText
from tests.lm.lm_runs import CHARS, IDS, TINY_LM


def test_bmoe_keeps_its_clean_model_among_colluders_and_traditional_does_not(tmp_path: Path) -> None:
    cut = int(IDS.numel() * 0.9)
    text = LMText(CharTokenizer.from_text("".join(CHARS)), IDS[:cut], IDS[cut:], 1.0)
    settings = AttackSettings({**TINY_LM, "steps": 3, "validation_every": 3}, edges=5, ratio=0.4, probability=1.0)
    units = run_attacks(settings, text, tmp_path)
    assert clean_model_kept(units) == {"transient": True, "persistent": True}
    traditional = {u["reading"]: u for u in units if u["framework"] == "traditional"}
    for reading in ("transient", "persistent"):
        assert traditional[reading]["expert_cids"] != traditional["clean"]["expert_cids"]
        assert (tmp_path / f"lm_attacks_{reading}.png").stat().st_size > 1000
    rows = json.loads((tmp_path / "lm_attacks.json").read_text())
    assert {(r["framework"], r["reading"]) for r in rows} == {(f, r) for f in ("bmoe", "traditional")
                                                              for r in ("clean", "transient", "persistent")}
