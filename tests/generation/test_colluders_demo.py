"""Generation among colluders (``experiments/lm_colluders.py``, ``bmoe lm colluders``): B-MoE's tokens are the clean
ones while the unverified deployment's, among the same colluding edges, are not; bad flags are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmoe.experiments.lm_colluders import ColludersError, ColludersSettings, run_colluders
from bmoe.lm.decoding.sampling import SamplingParams
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here
from tests.lm.tiny_lm import one_thread
from tests.lm.tiny_models import tiny_model
from tests.serve.server_process import tiny_run

PARAMS = SamplingParams(max_tokens=12, temperature=0.8, seed=1)


@pytest.mark.parametrize("attack", ["swap", "zero"])
def test_among_three_colluders_of_ten_bmoe_is_clean_and_the_unverified_deployment_is_not(attack: str) -> None:
    with one_thread():
        outcome = run_colluders(tiny_model(), [1, 2, 3], PARAMS, ColludersSettings(attack=attack, chunk_steps=4))
    assert len(outcome.colluders) == 3
    assert outcome.verified == outcome.clean and outcome.verified_is_clean
    assert outcome.unverified != outcome.clean and not outcome.unverified_is_clean
    assert outcome.accused == 3 and outcome.rollbacks > 0 and outcome.lies_unverified > 0
    assert len(outcome.clean) == len(outcome.verified) == PARAMS.max_tokens


def test_the_colluders_are_drawn_from_the_seed() -> None:
    drawn = {tuple(ColludersSettings(seed=seed).colluding_edges()) for seed in range(6)}
    assert len(drawn) > 1 and all(len(set(edges)) == 3 and max(edges) < 10 for edges in drawn)
    assert ColludersSettings(seed=4).colluding_edges() == ColludersSettings(seed=4).colluding_edges()


@pytest.mark.parametrize(("changes", "needle"), [({"colluders": 4}, "not fewer than a third"),
                                                 ({"attack": "lies"}, "unknown attack"),
                                                 ({"replicas": 0}, "replicas must be")])
def test_settings_the_demonstration_cannot_honour_are_refused(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ColludersError, match=needle):
        ColludersSettings(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("args", "needle"), [
    ([], "exactly one of --run-dir"),
    (["--run-dir", "nowhere"], "no such directory"),
    (["--run-dir", ".", "--model", "smollm2-135m"], "exactly one of --run-dir"),
    (["--model", "smollm2-135m", "--colluders", "4"], "not fewer than a third"),
    (["--model", "smollm2-135m", "--attack", "lies"], "--attack"),
    (["--model", "no-such-model"], "no-such-model"),
])
def test_bad_flags_are_one_line(args: list[str], needle: str, tmp_path: Path) -> None:
    assert_user_error(bmoe_here("lm", "colluders", *args, cwd=tmp_path), needle)


@pytest.mark.slow  # one training step of a tiny run, then three generations: ~10 s on 2 shared cores
def test_the_command_prints_the_three_texts_of_a_trained_runs_model(tmp_path: Path) -> None:
    with one_thread():
        run_dir = tiny_run(tmp_path / "tiny")
    result = bmoe_here("lm", "colluders", "--run-dir", run_dir, "--prompt", "to be", "--tokens", "12",
                       "--chunk-steps", "4", "--attack", "identity")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "--- clean (one process, no protocol)" in lines
    assert "--- B-MoE among the colluders  [equals the clean text]" in lines
    # a model trained one step barely hears its experts: the unverified text may or may not differ (the function's
    # tests above show it does on a model whose experts matter)
    assert any(line.startswith("--- unverified among the colluders  [") for line in lines)
    texts = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("---")]
    assert len(texts) == 3 and texts[0] == texts[1] and all(text.startswith("to be") for text in texts)
    assert "B-MoE recorded 3 colluder(s)" in lines[-1]
