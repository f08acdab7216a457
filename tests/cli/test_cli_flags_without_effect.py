"""A flag that would have no effect is refused, not ignored: ``--replicas`` without a sampled assignment,
``--slash`` or ``--reward`` without ``--stake``, the adaptive settings without ``--assignment adaptive``; in
``bmoe train`` and ``bmoe cluster up`` alike, one line, exit 2, nothing written. The same values given by
their defaults (no flag) still run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmoe.run.config import RunConfig
from bmoe.run.flag_effects import check_given_settings
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here


@pytest.mark.parametrize(("flags", "needles"), [
    (["--replicas", "2"], ["--replicas has no effect without --assignment sampled or adaptive"]),
    (["--replicas", "3"], ["--replicas has no effect"]),  # the default's value, but given
    (["--slash", "10"], ["--slash has no effect without --stake"]),
    (["--reward", "2"], ["--reward has no effect without --stake"]),
    (["--assignment", "sampled", "--trusted-replicas", "2"], ["--trusted-replicas", "--assignment adaptive"]),
    (["--trust-after", "5"], ["--trust-after has no effect"]),
])
def test_train_refuses_a_flag_without_effect_writing_nothing(tmp_path: Path, flags: list[str],
                                                             needles: list[str]) -> None:
    run_dir = tmp_path / "run"
    assert_user_error(bmoe_here("train", "--run-dir", run_dir, *SMALL, *flags), *needles)
    assert not run_dir.exists()


def test_cluster_up_refuses_a_flag_without_effect_writing_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cluster"
    assert_user_error(bmoe_here("cluster", "up", "--dir", root, "--edges", "4", "--replicas", "2"),
                      "--replicas has no effect")
    assert not root.exists()


def test_flags_that_act_pass() -> None:
    check_given_settings(RunConfig(assignment="sampled", num_edges=5), ["replicas"])
    check_given_settings(RunConfig(stake=100), ["slash", "reward"])
    check_given_settings(RunConfig(), ["difficulty", "seed"])  # settings that always act
