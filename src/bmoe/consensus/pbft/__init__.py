"""The PBFT replica (Castro & Liskov, OSDI '99) as a sans-IO state machine, one file per concern."""

from bmoe.consensus.pbft.ordering import PbftConfig, PbftReplica

__all__ = ["PbftConfig", "PbftReplica"]
