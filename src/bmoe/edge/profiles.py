"""Edge numeric profiles: how an honest edge's float results differ, the way real hardware differs.

A profile names what an edge computes under: its torch thread count, whether oneDNN is on, float64
accumulation (compute in float64, cast the result to float32), routed rows computed in chunks of a
stated size (a batch split), the device, and environment variables that must be set before torch
loads (MKL's code path, ``MKL_CBWR``). :meth:`NumericProfile.forward` and :meth:`computing` make a
forward or backward pass truly compute under the profile in this process; a profile with
environment variables takes effect only in an edge process started with them (:meth:`check_process`
refuses a process that was not).

Fleet strings (``PROFILE=COUNT,...``) and the profiles' names are read without torch in
:mod:`bmoe.edge.fleet`, re-exported here. Measured differences on this project's machine are in docs/verification.md.

Must not know: the ledger, the round, or how results are compared.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from bmoe.edge.fleet import DEFAULT, GPU_PROFILE, FleetError, check_profile_name, has_gpu
from bmoe.edge.fleet import is_default_fleet as is_default_fleet
from bmoe.edge.fleet import parse_fleet as parse_fleet

# torch.set_num_threads and the oneDNN switch are process-wide: one profile computes at a time.
_COMPUTE_LOCK = threading.RLock()


@dataclass(frozen=True)
class NumericProfile:
    """What an edge computes under. Unset fields leave the process's own setting in force."""

    name: str
    summary: str
    threads: int | None = None  # torch.set_num_threads while computing (None: the process's --threads)
    onednn: bool = True  # torch.backends.mkldnn.enabled (convolutions run on oneDNN when on)
    float64: bool = False  # compute in float64, then cast the result (and new weights) to float32
    chunk_rows: int | None = None  # the routed rows computed this many at a time, then concatenated
    device: str = "cpu"
    env: tuple[tuple[str, str], ...] = ()  # set before torch loads: only an edge process can honour them

    @property
    def in_process(self) -> bool:
        """Whether this process can compute under the profile (no environment variables needed)."""
        return not self.env

    @contextmanager
    def computing(self) -> Iterator[None]:
        """Run the enclosed forward or backward pass under the profile's threads and oneDNN switch."""
        with _COMPUTE_LOCK:
            threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
            if self.threads is not None and self.threads != threads:
                torch.set_num_threads(self.threads)
            torch.backends.mkldnn.enabled = onednn and self.onednn
            try:
                yield
            finally:
                torch.backends.mkldnn.enabled = onednn
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)

    def prepare(self, module: nn.Module) -> nn.Module:
        """The module in the profile's precision and on its device; the tensors it was loaded from are untouched."""
        if self.float64:
            module = module.double()
        return module.to(self.device) if self.device != "cpu" else module

    def forward(self, module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """``module`` (already :meth:`prepare`d, or a function of weights in the profile's precision) on ``x``
        (n, *shape): (n, C) float32 on the CPU."""
        x = x.to(device=self.device, dtype=torch.float64 if self.float64 else x.dtype)
        if self.chunk_rows is not None and x.shape[0] > self.chunk_rows:
            output = torch.cat([module(part) for part in x.split(self.chunk_rows)])  # (n, C)
        else:
            output = module(x)  # (n, C)
        return output.to(device="cpu", dtype=torch.float32)

    def check_process(self) -> None:
        """Refuse to run in a process whose environment lacks the profile's variables."""
        wrong = [f"{key}={value}" for key, value in self.env if os.environ.get(key) != value]
        if wrong:
            raise FleetError(f"profile {self.name} needs {' '.join(wrong)} in the environment before torch "
                             "loads: start the edge process with it (bmoe cluster up --fleet does)")


def _registry() -> dict[str, NumericProfile]:
    profiles = [
        NumericProfile(DEFAULT, "the process's own settings (--threads, oneDNN on, float32, all rows at once)"),
        NumericProfile("threads1", "one torch thread", threads=1),
        NumericProfile("threads2", "two torch threads (GEMM reductions split differently)", threads=2),
        NumericProfile("f64", "float64 accumulation, result cast to float32", float64=True),
        NumericProfile("chunked", "routed rows computed 16 at a time (a batch split)", chunk_rows=16),
        NumericProfile("nodnn", "oneDNN off: convolutions on torch's native kernels", onednn=False),
        NumericProfile("mkl-compat", "MKL's conditional-numerical-reproducibility path MKL_CBWR=COMPATIBLE",
                       env=(("MKL_CBWR", "COMPATIBLE"),)),
        NumericProfile("mkl-avx2", "MKL's AVX2 code path MKL_CBWR=AVX2 (differs only on a CPU with AVX-512)",
                       env=(("MKL_CBWR", "AVX2"),)),
    ]
    if has_gpu():
        profiles.append(NumericProfile(GPU_PROFILE, "the GPU (float32, cuBLAS/cuDNN kernels)", device="cuda"))
    return {profile.name: profile for profile in profiles}


PROFILES: dict[str, NumericProfile] = _registry()


def get_profile(name: str) -> NumericProfile:
    check_profile_name(name)
    return PROFILES[name]
