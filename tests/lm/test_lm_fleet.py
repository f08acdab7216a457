"""A language model on a mixed fleet under ``tolerance``: honest drift measured per layer and direction, one
bound that fits them all, zero records against honest edges, and the liars still caught."""

from __future__ import annotations

from bmoe.experiments.lm_calibration import measure, one_bound_fits, recommended
from bmoe.lm.char_tokenizer import CharTokenizer
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.text import LMText
from tests.lm.lm_runs import CHARS, IDS, TINY_LM, tiny_session

FLEET = "threads1=2,f64=2,chunked=1"


def test_honest_drift_is_measured_per_layer_and_direction_and_the_recommended_bounds_hold() -> None:
    cut = int(IDS.numel() * 0.9)
    text = LMText(CharTokenizer.from_text("".join(CHARS)), IDS[:cut], IDS[cut:], 1.0)
    config = LMRunConfig.build({**TINY_LM, "steps": 2}, {"num_edges": 5, "difficulty": 0, "fleet": FLEET})
    divergence = measure(config, text)
    keys = set(divergence.largest)
    assert {(d, layer, "result") for d in "fb" for layer in (0, 1)} <= keys
    assert {("b", layer, "update") for layer in (0, 1)} <= keys
    assert all(0 < value < 1e-5 for value in divergence.largest.values())  # float64 edges do drift, a little
    assert one_bound_fits(divergence, "result")  # forward outputs and (scaled) backward gradients alike
    result_bound, update_bound = recommended(divergence)
    calibrated = tiny_session(lm={"steps": 3}, fleet=FLEET, comparison="tolerance", result_bound=result_bound,
                              update_bound=update_bound)
    assert sum(r["misbehaviour"] for r in calibrated.train().rounds) == 0
    too_tight = tiny_session(lm={"steps": 1}, fleet=FLEET, comparison="tolerance",
                             result_bound=divergence.phase_max("result") / 1000,
                             update_bound=divergence.phase_max("update") / 1000)
    assert sum(r["misbehaviour"] for r in too_tight.train().rounds) > 0  # the drift is real: a bound below it splits


def test_under_tolerance_a_liar_on_the_mixed_fleet_is_caught_and_honest_edges_are_not() -> None:
    session = tiny_session(lm={"steps": 2}, num_edges=6, fleet="threads1=2,f64=2,chunked=2", comparison="tolerance",
                           malicious_ratio=0.2, attack="sign_flip", attack_params={"probability": 1.0})
    session.train()
    records = session.node.view().edge_records
    for edge in session.edges:
        assert (records[edge.address].dissent > 0) == edge.behaviour.malicious
