"""The two frameworks a run can be, as presets: B-MoE and the paper's traditional baseline.

Owns everything that tells them apart, so that no other code asks which one a run is; it asks the
preset instead:

========================  =================================  =========================================
property                  ``bmoe``                           ``traditional``
========================  =================================  =========================================
``assignment``            the run's (all, sampled, adaptive)  ``host``: edge *i* hosts expert *i*
``rule``                  the run's acceptance rule          ``sole``: the one result, unverified
``verifies``              results compared, dissent recorded  nothing compared (no stake, no records)
``keeps_ledger``          blocks sealed by the run's         no blocks persisted, no consensus: one
                          consensus and persisted            server
``edges_in_play(N, M)``   the M edges of the fleet           N: one edge per expert
========================  =================================  =========================================

A run records the preset's name (``framework`` in ``config.json`` and the genesis), so recorded configs
and every hash are as they were before presets existed.

Must not know: the round, the ledger's state machine, tensors, I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    """What a framework fixes about a run; ``None`` leaves the run's own setting in force."""

    name: str
    assignment: str | None  # the assignment policy it fixes (verify/assignment.py), or None: the run's
    rule: str | None  # the acceptance rule it fixes (verify/acceptance.py), or None: the run's
    verifies: bool  # edges' results are compared across replicas, and dissent recorded
    keeps_ledger: bool  # blocks are sealed by the run's consensus and persisted

    @property
    def one_edge_per_expert(self) -> bool:
        """Edge *i* hosts expert *i*: a fleet needs at least as many edges as experts."""
        return self.assignment == "host"

    def edges_in_play(self, num_experts: int, num_edges: int) -> int:
        """How many of the fleet's ``num_edges`` edges take part in a run of ``num_experts`` experts."""
        return num_experts if self.one_edge_per_expert else num_edges


BMOE = Framework("bmoe", assignment=None, rule=None, verifies=True, keeps_ledger=True)
TRADITIONAL = Framework("traditional", assignment="host", rule="sole", verifies=False, keeps_ledger=False)
FRAMEWORKS: Mapping[str, Framework] = {f.name: f for f in (BMOE, TRADITIONAL)}


def framework_of(name: str) -> Framework:
    """The preset called ``name``; ``ValueError`` naming the known ones otherwise."""
    preset = FRAMEWORKS.get(name)
    if preset is None:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {name!r}")
    return preset
