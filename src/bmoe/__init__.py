"""bmoe: trustworthy distributed Mixture-of-Experts (B-MoE, Zhu et al., 2025).

The small public API::

    from bmoe import RunConfig, Session, load_dataset
    with Session(RunConfig(malicious_ratio=0.3, rounds=50)) as session:
        session.train()
        print(session.evaluate(), session.head_hash)

Importing ``bmoe`` (or any subpackage: the ledger, storage, verification, consensus) loads none of the
public API: each name is imported on first use (:func:`__getattr__`), so a tool that needs only the ledger
never pays for torch (:mod:`bmoe.lazy_exports`). Must not know: anything but where each public name lives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bmoe.lazy_exports import lazy_exports
from bmoe.recursion import ORIGINAL_LIMIT as _ORIGINAL_RECURSION_LIMIT  # noqa: F401  (before any eth library)

if TYPE_CHECKING:
    from bmoe.data import Dataset, load_dataset, make_synthetic
    from bmoe.edge.behaviour import Attack, EdgeBehaviour, make_behaviour, register
    from bmoe.moe.experts import ExpertSpec
    from bmoe.moe.model import MoE
    from bmoe.run.config import RunConfig
    from bmoe.run.session import Session

__version__ = "0.1.0"

_HOMES = {  # public name -> the module that defines it
    "Attack": "bmoe.edge.behaviour",
    "Dataset": "bmoe.data",
    "EdgeBehaviour": "bmoe.edge.behaviour",
    "ExpertSpec": "bmoe.moe.experts",
    "MoE": "bmoe.moe.model",
    "RunConfig": "bmoe.run.config",
    "Session": "bmoe.run.session",
    "load_dataset": "bmoe.data",
    "make_behaviour": "bmoe.edge.behaviour",
    "make_synthetic": "bmoe.data",
    "register": "bmoe.edge.behaviour",
}

__all__ = [  # the names _HOMES maps, listed for type checkers and linters
    "Attack", "Dataset", "EdgeBehaviour", "ExpertSpec", "MoE", "RunConfig", "Session", "load_dataset",
    "make_behaviour", "make_synthetic", "register",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
