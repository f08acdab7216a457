"""Each setting is declared once (run/settings/) and everything else is read off the declarations: RunConfig's
fields and defaults, the checks, the commands' options and the cluster's flag map."""

from __future__ import annotations

import dataclasses

import click
import pytest

from bmoe.cli.app import app
from bmoe.cli.cluster import up_command
from bmoe.run.config import RunConfig
from bmoe.run.config_checks import check_value
from bmoe.run.settings.registry import DECLARED, EXECUTION_SETTINGS, GROUPS, SETTINGS, shown_in
from bmoe.run.settings.setting import CLUSTER_UP, INFER, TRAIN

COMMANDS = {TRAIN: app.commands["train"], CLUSTER_UP: up_command, INFER: app.commands["infer"]}
FIELDS = [field.name for field in dataclasses.fields(RunConfig)]


def test_every_field_has_exactly_one_declaration_in_one_group() -> None:
    names = [setting.name for settings in GROUPS.values() for setting in settings]
    assert sorted(names) == sorted(FIELDS)
    assert len(names) == len(set(names))
    assert [setting.name for setting in DECLARED] == FIELDS


def test_defaults_come_from_the_declarations_and_pass_their_own_checks() -> None:
    config = RunConfig()
    for setting in DECLARED:
        assert getattr(config, setting.name) == setting.default
        check_value(setting.name, setting.default)
        assert setting.reason, setting.name
    assert RunConfig().attack_params is not RunConfig().attack_params  # a mutable default is never shared


def test_execution_settings_are_the_unrecorded_declarations() -> None:
    assert {"rounds", "threads", "share_compute", "eval_every", "limit_test", "data_dir", "store", "ipfs_api",
            "rpc_url", "eth_key", "stall_after"} == EXECUTION_SETTINGS


@pytest.mark.parametrize("command", [TRAIN, CLUSTER_UP, INFER])
def test_every_option_that_sets_a_field_derives_from_its_declaration(command: str) -> None:
    """An option whose parameter is a RunConfig field is the declaration's: the same flags, one per setting the
    command shows (the comparison, store and ledger groups set fields through their own rules)."""
    grouped = {"comparison", "update_bound", "force_bound", "store", "ipfs_api", "rpc_url", "eth_key"}
    params = {param.name: param for param in COMMANDS[command].params if isinstance(param, click.Option)}
    shown = {setting.name for setting in shown_in(command)}
    assert {name for name in params if name in SETTINGS} - grouped == shown
    for setting in shown_in(command):
        option = params[setting.name]
        assert set(setting.flag_names(command)) <= set(option.opts)
        if setting.kind != "params":  # attack_params: repeatable NAME=NUMBER pairs, none by default
            assert option.default == (setting.default if command == TRAIN else None)


def test_flag_spellings_of_today_stay() -> None:
    train = {opt for param in COMMANDS[TRAIN].params for opt in param.opts}
    up = {opt for param in COMMANDS[CLUSTER_UP].params for opt in param.opts}
    assert {"-n", "-k", "-m", "--experts", "--edges", "--malicious-ratio", "--attack-param", "--collude"} <= train
    assert {"--experts", "--edges", "--malicious", "--attack-param", "--hidden", "--top-k"} <= up
    assert "--malicious-ratio" not in up and "--hidden" not in train
