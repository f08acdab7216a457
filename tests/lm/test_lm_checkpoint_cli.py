"""``bmoe lm export`` / ``import`` / ``train --init``: a run's ledger model out as a Mixtral checkpoint and back in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bmoe.lm.checkpoint import load_pretrained
from bmoe.protocol.lm.trusted import initial_objects
from bmoe.run.lm.artifacts import open_lm_run
from bmoe.run.lm.session import LMSession
from bmoe.storage import cid_of
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here
from tests.lm.lm_runs import CHARS, IDS, TINY_LM


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    from bmoe.lm.char_tokenizer import CharTokenizer
    from bmoe.run.lm.config import LMRunConfig

    tokenizer = CharTokenizer.from_text("".join(CHARS))
    config = LMRunConfig.build({**TINY_LM, "steps": 2}, {"num_edges": 3, "difficulty": 0, "seed": 5})
    cut = int(IDS.numel() * 0.9)
    session = LMSession(config, tokenizer.to_bytes(), tokenizer.vocab_size, IDS[:cut], IDS[cut:], tmp_path / "run")
    session.train()
    session.close()
    return tmp_path / "run"


def test_export_writes_the_ledgers_model_and_import_reads_it_back(run_dir: Path, tmp_path: Path) -> None:
    result = bmoe_here("lm", "export", run_dir, tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    run = open_lm_run(run_dir)
    exported = load_pretrained(tmp_path / "hf")
    for name, tensor in run.model.state_dict().items():
        assert torch.equal(tensor, exported.state_dict()[name]), name
    assert (tmp_path / "hf" / "bmoe_tokenizer").read_bytes() == run.tokenizer.to_bytes()
    shown = bmoe_here("lm", "import", tmp_path / "hf")
    trusted, experts = initial_objects(exported, exported.config, cid_of(run.tokenizer.to_bytes()))
    assert shown.returncode == 0 and cid_of(trusted) in shown.stdout and cid_of(experts[-1]) in shown.stdout


def test_a_run_started_from_a_checkpoint_records_its_objects_in_the_genesis(run_dir: Path, tmp_path: Path) -> None:
    assert bmoe_here("lm", "export", run_dir, tmp_path / "hf").returncode == 0
    exported = load_pretrained(tmp_path / "hf")
    run = open_lm_run(run_dir)
    tokenizer = run.tokenizer.to_bytes()
    cut = int(IDS.numel() * 0.9)
    started = LMSession(run.config, tokenizer, run.tokenizer.vocab_size, IDS[:cut], IDS[cut:], initial=exported)
    trusted, experts = initial_objects(exported, exported.config, cid_of(tokenizer))
    genesis = started.node.view()
    assert genesis.gate_cid == cid_of(trusted) and genesis.expert_cids == [cid_of(data) for data in experts]
    assert started.validate() == pytest.approx(LMSession(run.config, tokenizer, run.tokenizer.vocab_size, IDS[:cut],
                                                         IDS[cut:], initial=run.model).validate())


def test_import_refuses_a_directory_without_a_checkpoint(tmp_path: Path) -> None:
    assert_user_error(bmoe_here("lm", "import", tmp_path), "config.json")


def test_export_of_a_directory_without_a_run_is_one_line(tmp_path: Path) -> None:
    assert_user_error(bmoe_here("lm", "export", tmp_path, tmp_path / "out"), "lm.json")
    assert not (tmp_path / "out").exists()


def test_sample_continues_the_prompt_the_same_way_for_the_same_seed(run_dir: Path) -> None:
    first = bmoe_here("lm", "sample", run_dir, "--prompt", "To be", "--tokens", "20", "--seed", "3")
    again = bmoe_here("lm", "sample", run_dir, "--prompt", "To be", "--tokens", "20", "--seed", "3")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout and first.stdout.startswith("To be")
    assert len(first.stdout.rstrip("\n")) == len("To be") + 20  # character level: one character per token
    greedy = bmoe_here("lm", "sample", run_dir, "--prompt", "To be", "--tokens", "5", "--temperature", "0")
    assert greedy.returncode == 0 and greedy.stdout.startswith("To be")


def test_sample_refuses_a_prompt_outside_the_vocabulary(run_dir: Path) -> None:
    assert_user_error(bmoe_here("lm", "sample", run_dir, "--prompt", "Zebra§"), "not in the tokenizer's vocabulary")


@pytest.mark.parametrize("body", ['{"lm": {}, "run": {"bogus": 1}}', '{"lm": [1], "run": {}}',
                                  '{"lm": "ab", "run": {}}', '{"lm": {"layers": "four"}, "run": {}}', "[]", "not json"])
def test_a_garbled_lm_json_is_one_line_for_sample_export_and_audit(run_dir: Path, tmp_path: Path, body: str) -> None:
    (run_dir / "lm.json").write_text(body)
    assert_user_error(bmoe_here("lm", "sample", run_dir), "lm.json")
    assert_user_error(bmoe_here("lm", "export", run_dir, tmp_path / "out"), "lm.json")
    assert_user_error(bmoe_here("audit", run_dir), "lm.json")
