"""Owns computing a probe in a process started with a profile's environment variables (``MKL_CBWR``
acts only when set before torch loads): ``python -m bmoe.experiments.calibration.worker PROBE OUT
--profile NAME --threads N`` reads the probe from PROBE and writes the results to OUT.

The process refuses to run without the profile's variables (:meth:`NumericProfile.check_process`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from bmoe.edge.profiles import FleetError, get_profile
from bmoe.experiments.calibration.compute import Probe, compute_probe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bmoe.experiments.calibration.worker")
    parser.add_argument("probe", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
        profile.check_process()
    except FleetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    compute_probe(profile, Probe.load(args.probe)).save(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
