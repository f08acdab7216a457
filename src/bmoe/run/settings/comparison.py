"""Comparison settings: when edges' answers count as the same, and which answers a group accepts.

``comparison`` and its bounds are shown by the comparison option group (``--comparison``, ``--bound``,
``--update-bound``, ``--bound-from``, ``--force-bound``), which reads a calibration file into several of them.
"""

from __future__ import annotations

from bmoe.run.settings.setting import TRAIN, Flag, Setting, train_and_up
from bmoe.verify.acceptance import RULES
from bmoe.verify.bound_window import MAX_BOUND, MAX_PER_SAMPLE
from bmoe.verify.comparison import COMPARISONS, DEFAULT_RESULT_BOUND, DEFAULT_UPDATE_BOUND


def _uncalibrated(config: object) -> bool:
    return config.calibration_cid is None


COMPARISON = (
    Setting("rule", "str", "majority", "acceptance rule (B-MoE Sec. III-C: majority)",
            help="majority | fraction | plurality", choices=tuple(RULES), flags=train_and_up()),
    Setting("rule_fraction", "float", 2 / 3, "a two-thirds quorum", help="quorum for --rule fraction", low=0.0,
            high=1.0, low_open=True, label="rule fraction", flags={TRAIN: Flag(shown_default="2/3")}),
    Setting("comparison", "str", "exact", "bit-exact agreement, the paper's", choices=tuple(COMPARISONS)),
    Setting("result_bound", "float", DEFAULT_RESULT_BOUND, "verify/comparison.py: above honest float divergence",
            low=0.0, high=MAX_BOUND, low_open=True, label="tolerance bound of results",
            omit_when=lambda c: c.comparison != "tolerance"),
    Setting("update_bound", "float", DEFAULT_UPDATE_BOUND, "verify/comparison.py: above honest float divergence",
            low=0.0, high=MAX_BOUND, low_open=True, label="tolerance bound of updates",
            omit_when=lambda c: c.comparison != "tolerance"),
    Setting("calibration_cid", "str", None, "no calibration: the bounds are not checked against one",
            nullable=True, label="the calibration's CID", omit_when=_uncalibrated),
    Setting("calibrated_result_max", "float", None, "the calibration's largest honest divergence of results",
            low=0.0, high=MAX_PER_SAMPLE, nullable=True, label="calibrated honest maximum of results",
            omit_when=_uncalibrated),
    Setting("calibrated_update_max", "float", None, "the calibration's largest honest |Δw| of updates",
            low=0.0, high=MAX_BOUND, nullable=True, label="calibrated honest maximum of updates",
            omit_when=_uncalibrated),
    Setting("force_bound", "bool", False, "bounds must sit in the calibration's window (verify/bound_window.py)",
            omit_when=lambda c: not c.force_bound),
)
