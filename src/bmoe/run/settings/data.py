"""Data settings: which dataset, where it lives, how much of it, and the seed that orders it."""

from __future__ import annotations

from bmoe.run.settings.limits import MAX_SAMPLES, MAX_SEED
from bmoe.run.settings.setting import Setting, train_and_up

DATA = (
    Setting("dataset", "str", "digits", "bundled offline; fashion-mnist is the paper's (Sec. V)",
            help="digits | fashion-mnist | cifar10 | synthetic", flags=train_and_up()),
    Setting("data_dir", "str", None, "the dataset's default place", help="directory holding the dataset",
            nullable=True, recorded=False, flags=train_and_up()),
    Setting("limit_train", "int", None, "the whole training split", help="use only this many training samples",
            low=1, high=MAX_SAMPLES, nullable=True, flags=train_and_up()),
    Setting("limit_test", "int", None, "the whole test split", help="use only this many test samples",
            low=1, high=MAX_SAMPLES, nullable=True, recorded=False, flags=train_and_up()),
    Setting("seed", "int", 0, "fixes data order, initial weights, attacks and keys",
            help="fixes keys, data order, weights, attacks", low=0, high=MAX_SEED,
            flags=train_and_up()),
)
