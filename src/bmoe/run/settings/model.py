"""Model settings: the experts (how many, which preset, how wide), K, and how they learn."""

from __future__ import annotations

from bmoe.moe.presets import PRESETS
from bmoe.run.settings.limits import MAX_BATCH, MAX_HIDDEN, MAX_PARTIES, MAX_STEP
from bmoe.run.settings.setting import CLUSTER_UP, Flag, Setting, train_and_up

MODEL = (
    Setting("num_experts", "int", 10, "N (paper, Sec. V)", help="number of experts N", low=1, high=MAX_PARTIES,
            label="experts N", flags=train_and_up(train=Flag(("--experts", "-n")), up=Flag(("--experts",)))),
    Setting("top_k", "int", 3, "K (paper, Sec. V)", help="experts per sample K", low=1, high=MAX_PARTIES, label="K",
            flags=train_and_up(train=Flag(("--top-k", "-k")))),
    Setting("expert", "str", "mlp", "paper: MLP for Fashion-MNIST, CNN for CIFAR-10",
            help="mlp | cnn | mlp-int (integer arithmetic)", choices=tuple(PRESETS), flags=train_and_up()),
    Setting("hidden", "int", 256, "paper: 256 hidden units", help="hidden units", low=1, high=MAX_HIDDEN,
            label="hidden units", flags={CLUSTER_UP: Flag()}),
    Setting("batch_size", "int", 100, "samples per task (paper: 1000)", help="samples per task", low=1,
            high=MAX_BATCH, label="batch size", flags=train_and_up()),
    Setting("lr", "float", 0.1, "plain SGD (stateless, so an update is a pure function of weights and gradient)",
            help="SGD learning rate", low=0.0, high=MAX_STEP, low_open=True, label="learning rate",
            flags=train_and_up()),
    Setting("balance", "float", 0.01, "load-balancing loss weight at the gate (Switch Transformer's 0.01); 0 = off",
            help="load-balancing loss weight", low=0.0, high=MAX_STEP, label="balance weight", flags=train_and_up()),
)
