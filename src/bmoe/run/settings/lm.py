"""A language model's settings: the model's shape, its tokenizer, and how it trains (``bmoe lm train``).

Declared with the same :class:`Setting` record as a classifier run's settings, in their own list: they are the
fields of :class:`~bmoe.run.lm.config.LMSettings`, not of ``RunConfig``, whose settings (the fleet, the comparison,
the assignment, stake, the ledger, the seed) a language model's run shares (``run/lm/config.py``). The defaults are
the issue's character-level model, nanoGPT's Shakespeare-char CPU configuration made a Mixture-of-Experts.

Must not know: click (``cli/lm/train.py`` reads the flags off these), the round, the disk.
"""

from __future__ import annotations

from bmoe.run.settings.limits import MAX_BATCH, MAX_HIDDEN, MAX_PARTIES, MAX_ROUNDS, MAX_STEP
from bmoe.run.settings.setting import LM_TRAIN, Flag, Setting


def _shown() -> dict[str, Flag]:
    return {LM_TRAIN: Flag()}


LM_SETTINGS = (
    Setting("corpus", "str", "shakespeare", "the complete Shakespeare (the issue); brown: 15 genres for experts to "
            "specialise on", help="shakespeare | brown", choices=("shakespeare", "brown"), flags=_shown()),
    Setting("tokenizer", "str", "char", "character level: exactly reversible, tiny embeddings (the issue)",
            help="char | bpe (byte-level BPE trained offline with `tokenizers`)", choices=("char", "bpe"),
            flags=_shown()),
    Setting("bpe_vocab", "int", 1024, "bmoe lm data's default: about 2.4 characters per token on Shakespeare",
            help="vocabulary size of the BPE tokenizer", low=260, high=MAX_HIDDEN, flags=_shown()),
    Setting("layers", "int", 4, "nanoGPT's CPU configuration", help="transformer layers L", low=1, high=64,
            flags=_shown()),
    Setting("hidden_size", "int", 128, "nanoGPT's CPU configuration (d)", help="model width d", low=2,
            high=MAX_HIDDEN, flags={LM_TRAIN: Flag(("--d-model",))}),
    Setting("intermediate_size", "int", 256, "top-2 of 256: the FLOPs of nanoGPT's dense 4d FFN",
            help="each expert's SwiGLU width", low=1, high=MAX_HIDDEN, flags={LM_TRAIN: Flag(("--expert-width",))}),
    Setting("heads", "int", 4, "nanoGPT's CPU configuration", help="attention heads", low=1, high=1024,
            flags=_shown()),
    Setting("kv_heads", "int", 4, "no grouping by default (grouped-query attention when fewer than heads)",
            help="key/value heads (fewer than --heads: grouped-query attention)", low=1, high=1024, flags=_shown()),
    Setting("lm_experts", "int", 8, "the issue's 8 experts per layer", help="experts per layer N", low=1,
            high=MAX_PARTIES, flags={LM_TRAIN: Flag(("--experts",))}),
    Setting("lm_top_k", "int", 2, "Mixtral's top-2", help="experts per token K", low=1, high=MAX_PARTIES,
            flags={LM_TRAIN: Flag(("--top-k",))}),
    Setting("context", "int", 64, "nanoGPT's CPU block size", help="tokens per sequence (the context)", low=2,
            high=1 << 16, flags=_shown()),
    Setting("tie_embeddings", "bool", False, "Mixtral does not tie", help="tie the LM head to the embedding",
            flags=_shown()),
    Setting("aux_loss", "float", 0.01, "Switch Transformer's 0.01", help="load-balancing loss weight", low=0.0,
            high=MAX_STEP, flags=_shown()),
    Setting("z_loss", "float", 0.001, "ST-MoE's 0.001", help="router z-loss weight", low=0.0, high=MAX_STEP,
            flags=_shown()),
    Setting("steps", "int", 2000, "nanoGPT's CPU run: 2,000 iterations", help="training rounds (one batch each)",
            low=1, high=MAX_ROUNDS, recorded=False, flags=_shown()),
    Setting("sequences", "int", 12, "nanoGPT's CPU batch of 12 sequences", help="sequences per round", low=1,
            high=MAX_BATCH, flags=_shown()),
    Setting("max_lr", "float", 1e-3, "nanoGPT's Shakespeare-char AdamW learning rate", help="peak learning rate",
            low=0.0, high=MAX_STEP, low_open=True, flags={LM_TRAIN: Flag(("--lr",))}),
    Setting("min_lr", "float", 1e-4, "nanoGPT: a tenth of the peak", help="learning rate at the end of the decay",
            low=0.0, high=MAX_STEP, low_open=True, flags=_shown()),
    Setting("warmup", "int", 100, "nanoGPT's warmup", help="warmup rounds", low=0, high=MAX_ROUNDS, flags=_shown()),
    Setting("decay_steps", "int", 2000, "nanoGPT: decay over the whole run", help="rounds of the cosine decay",
            low=1, high=MAX_ROUNDS, flags=_shown()),
    Setting("validation_every", "int", 250, "a validation point every 250 rounds", help="rounds between validations",
            low=1, high=MAX_ROUNDS, recorded=False, flags={LM_TRAIN: Flag(("--eval-every",))}),
    Setting("validation_batches", "int", 20, "20 x 12 x 64 = 15 k held-out characters per point",
            help="validation batches per point", low=1, high=MAX_ROUNDS, recorded=False,
            flags={LM_TRAIN: Flag(("--eval-batches",))}),
)
LM_SETTINGS_BY_NAME = {setting.name: setting for setting in LM_SETTINGS}
