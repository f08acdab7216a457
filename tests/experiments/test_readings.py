"""The reproduction runs each attacked figure under both readings of the paper's attack, and shares the runs
that do not depend on the reading: traditional training is the same run under both (the host's noisy update
is adopted either way), while B-MoE trained among persistent attackers keeps the clean accepted weights but
records another ledger. These are the facts units.py relies on, checked on real runs."""

from __future__ import annotations

import hashlib

from bmoe.data import Dataset
from bmoe.experiments.reproduction.settings import READINGS, ReproSettings
from bmoe.experiments.reproduction.training_gap import conditions
from bmoe.experiments.reproduction.units import Unit, units_for
from bmoe.run.session import Session
from tests.conftest import small_config


def _trained(framework: str, attack: str, data: Dataset) -> tuple[str, str | None, list[list[int]]]:
    """(digest of the final model's weights, head hash, the gate's routing counts per round)."""
    params = {} if attack == "honest" else {"probability": 0.5, "noise_std": 0.5}
    config = small_config(framework=framework, rounds=16, malicious_ratio=0.4, attack=attack,
                          attack_params=params, collude=True)
    with Session(config, dataset=data) as session:
        session.train()
        weights = b"".join(t.numpy().tobytes() for t in session.model().state_dict().values())
        counts = [record["counts"] for record in session.history if record["kind"] == "train"]
        return hashlib.sha256(weights).hexdigest(), session.head_hash, counts


def test_traditional_training_is_the_same_run_under_both_readings(tiny_data: Dataset) -> None:
    transient, persistent = (_trained("traditional", READINGS[r], tiny_data) for r in ("transient", "persistent"))
    clean = _trained("traditional", "honest", tiny_data)
    assert transient == persistent
    assert transient[0] != clean[0]  # the attack struck: the readings agree on an attacked run, not a clean one


def test_bmoe_keeps_the_clean_weights_under_both_readings_but_records_another_ledger(tiny_data: Dataset) -> None:
    transient, persistent = (_trained("bmoe", READINGS[r], tiny_data) for r in ("transient", "persistent"))
    clean = _trained("bmoe", "honest", tiny_data)
    assert transient[0] == persistent[0] == clean[0]
    assert len({transient[1], persistent[1], clean[1]}) == 3  # what the attackers published differs


def test_units_share_only_what_does_not_depend_on_the_reading() -> None:
    settings = ReproSettings()
    names = {u.name for u in units_for(("fig2", "fig4a", "fig4b", "fig4c"), settings)}
    assert names == {"bmoe-r0.0", "traditional-r0.0", "traditional-r0.1", "traditional-r0.3", "traditional-r0.4",
                     *(f"bmoe-r{r}-{reading}" for r in ("0.1", "0.3", "0.4") for reading in READINGS)}
    assert {u.name for u in units_for(("fig2",), settings)} == {"traditional-r0.0", "traditional-r0.3"}
    assert all(u.serve == (u.ratio == 0.0) for u in units_for(("fig4c",), settings))
    assert units_for(("gap",), settings) == [] and Unit("bmoe", 0.3, "persistent").name == "bmoe-r0.3-persistent"


def test_the_gap_experiment_has_a_clean_baseline_for_every_learning_rate() -> None:
    settings = ReproSettings()
    every = conditions(settings)
    attacked, clean = [c for c in every if c.attacked], [c for c in every if not c.attacked]
    assert {c.lr for c in attacked} == {c.lr for c in clean}
    assert len({c.name for c in every}) == len(every)
    paper = next(c for c in attacked if c.label == "paper's setting")
    assert (paper.probability, paper.noise_std, paper.lr) == (0.2, 0.5, settings.base_config().lr)
