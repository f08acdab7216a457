"""bmoe: trustworthy distributed Mixture-of-Experts (B-MoE, Zhu et al., 2025).

The small public API::

    from bmoe import RunConfig, Session, load_dataset
    with Session(RunConfig(malicious_ratio=0.3, rounds=50)) as session:
        session.train()
        print(session.evaluate(), session.head_hash)
"""

from bmoe.data import Dataset, load_dataset, make_synthetic
from bmoe.edge.behaviour import Attack, EdgeBehaviour, make_behaviour, register
from bmoe.moe.experts import ExpertSpec
from bmoe.moe.model import MoE
from bmoe.protocol.config import RunConfig
from bmoe.protocol.session import Session
from bmoe.recursion import ORIGINAL_LIMIT as _ORIGINAL_RECURSION_LIMIT  # noqa: F401  (before any eth library)

__version__ = "0.1.0"

__all__ = [
    "Attack",
    "Dataset",
    "EdgeBehaviour",
    "ExpertSpec",
    "MoE",
    "RunConfig",
    "Session",
    "load_dataset",
    "make_behaviour",
    "make_synthetic",
    "register",
]
