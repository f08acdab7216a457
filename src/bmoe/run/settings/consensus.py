"""Consensus settings: how blocks are sealed (PoW, PBFT among validators, or an Ethereum contract)."""

from __future__ import annotations

from bmoe.edge.fleet import is_default_fleet
from bmoe.run.settings.limits import MAX_DELAY_S, MAX_RUN_DIFFICULTY, MAX_VALIDATORS
from bmoe.run.settings.setting import TRAIN, Flag, Setting, train_and_up

CONSENSUS_ENGINES = ("pow", "pbft", "ethereum")  # ethereum: blocks sealed by the run's contract (--ledger)
VALIDATOR_ATTACKS = ("tamper", "silent", "equivocate", "garbage", "replay")

CONSENSUS = (
    Setting("difficulty", "int", 8, "PoW leading zero bits; low so a demo round seals in milliseconds",
            help="PoW difficulty in leading zero bits", low=0, high=MAX_RUN_DIFFICULTY,
            label="PoW difficulty bits, each doubling the 2^d hashes a block needs", flags=train_and_up()),
    Setting("consensus", "str", "pow", "the paper's: one proposer mines", choices=CONSENSUS_ENGINES,
            help="pow (one proposer mines) | pbft (validators vote)",
            flags=train_and_up(up=Flag(help="pow (one validator) or pbft (n >= 4 validator processes)"))),
    Setting("validators", "int", 1, "one proposer; PBFT tolerates f = (n - 1) // 3 Byzantine of n",
            help="PBFT validators n (f = (n-1)//3)", low=1, high=MAX_VALIDATORS,
            flags=train_and_up(up=Flag(help="1 (PoW), or n >= 4 with --consensus pbft: one PBFT replica per "
                                       "process"))),
    Setting("byzantine_validators", "int", 0, "every validator honest; misbehaving ones are the first",
            help="PBFT: how many validators misbehave (the first ones)", low=0, high=MAX_VALIDATORS,
            flags={TRAIN: Flag()}),
    Setting("validator_attack", "str", "tamper", "a Byzantine primary proposes a tampered block",
            help="tamper | silent | equivocate | garbage | replay", choices=VALIDATOR_ATTACKS, flags={TRAIN: Flag()}),
    Setting("message_delay", "float", 0.01, "PBFT: a LAN's simulated one-way message delay (seconds)",
            help="PBFT: simulated one-way message delay in seconds", low=0.0, high=MAX_DELAY_S, low_open=True,
            label="message delay (s)", flags={TRAIN: Flag()}),
    Setting("validator_fleet", "str", "", "every validator 'default'",
            help="PBFT validators' numeric profiles PROFILE=COUNT,... in validator order (in-process profiles)",
            label="validator numeric profiles", omit_when=lambda c: is_default_fleet(c.validator_fleet),
            flags={TRAIN: Flag(shown_default="every validator 'default'")}),
)
