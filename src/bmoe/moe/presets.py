"""The expert presets' names, without torch: what a config needs to check ``--expert``.

The experts themselves (torch modules) are in :mod:`bmoe.moe.experts`, which re-exports these names.

Must not know: what an expert computes.
"""

INTEGER_PRESETS = ("mlp-int",)  # computed in integers: bit-identical results and updates on any hardware
PRESETS = ("mlp", "cnn", *INTEGER_PRESETS)
