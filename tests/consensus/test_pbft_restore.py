"""A replica process that restarts with its memory lost: it resumes from its durable log
(``PbftReplica.restore``), asks its peers at once (``ask_peers``) and catches up; a host can vote out a
primary that never proposed a request only the host knew of (``suspect_primary``)."""

from __future__ import annotations

import pytest

from bmoe.consensus.engine import Send
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.pbft_messages import DOMAIN, ViewChangeMessage, parse_message
from bmoe.consensus.sim import Simulator
from bmoe.consensus.wire import SignatureChecker
from tests.consensus.helpers import (
    all_committed,
    assert_safe,
    committed_payloads,
    honest_validate,
    identities,
    payloads,
    pbft_network,
)

CONFIG = PbftConfig(checkpoint_interval=4, timeout=0.5)


def _fresh_r3(sim: Simulator) -> PbftReplica:
    """What a restarted r3 process builds: a new replica with its committed blocks from disk."""
    old = sim.replicas["r3"]
    assert isinstance(old, PbftReplica)
    return PbftReplica(old.identity, old.validators, honest_validate, CONFIG)


def _log(sim: Simulator, name: str) -> list[tuple[bytes, dict[str, object]]]:
    return [(c.payload, dict(c.proof)) for c in sim.committed[name]]


def test_a_replica_restored_from_its_log_asks_its_peers_and_catches_up_without_new_work() -> None:
    sim, honest = pbft_network(4, config=CONFIG)
    blocks = payloads(9)
    for p in blocks[:3]:
        sim.propose(p)
    assert sim.run(until=2.0, stop=all_committed(honest, 3))
    sim.crash("r3")
    for p in blocks[3:]:
        sim.propose(p, to=["r0", "r1", "r2"])
    assert sim.run(until=6.0, stop=all_committed(["r0", "r1", "r2"], 9))
    assert len(sim.committed["r3"]) == 3

    fresh = _fresh_r3(sim)
    fresh.restore(_log(sim, "r3"), status_seq=10**12)
    assert fresh.executed == 3
    sim.replace(fresh, start=PbftReplica.ask_peers)
    assert sim.run(until=12.0, stop=all_committed(honest, 9))  # no request is pending: only its STATUS asked
    assert committed_payloads(sim, "r3") == blocks
    assert fresh.stats.events["caught_up"] == 6
    assert_safe(sim, honest)


def test_a_restarted_replica_whose_status_numbers_start_over_is_refused_as_a_replay() -> None:
    """Why ``restore`` takes ``status_seq``: peers remember the highest STATUS number they answered."""
    sim, honest = pbft_network(4, config=CONFIG)
    for p in payloads(2):
        sim.propose(p)
    assert sim.run(until=2.0, stop=all_committed(honest, 2))
    sim.crash("r3")
    sim.propose(b"missed", to=["r0", "r1", "r2"])
    assert sim.run(until=4.0, stop=all_committed(["r0", "r1", "r2"], 3))
    first = _fresh_r3(sim)
    first.restore(_log(sim, "r3"), status_seq=50)
    sim.replace(first, start=PbftReplica.ask_peers)
    sim.run(until=6.0)  # every answer to its STATUS delivered
    assert len(sim.committed["r3"]) == 3
    sim.crash("r3")
    second = _fresh_r3(sim)
    second.restore(_log(sim, "r3")[:2])  # its disk lost block 3, and its STATUS numbers start over at 1
    refused_before = sum(sim.replicas[n].stats.rejected.get("replayed", 0) for n in ("r0", "r1", "r2"))
    sim.replace(second, start=PbftReplica.ask_peers)
    sim.run(until=sim.now + 0.2)
    refused = sum(sim.replicas[n].stats.rejected.get("replayed", 0) for n in ("r0", "r1", "r2"))
    assert refused - refused_before == 3 and second.executed == 2


def test_restore_refuses_a_log_that_does_not_chain_and_comes_only_first() -> None:
    sim, honest = pbft_network(4, config=CONFIG)
    for p in payloads(3):
        sim.propose(p)
    assert sim.run(until=2.0, stop=all_committed(honest, 3))
    log = _log(sim, "r1")
    with pytest.raises(ValueError, match="block 2 does not match"):
        _fresh_r3(sim).restore([log[0], log[2]])
    with pytest.raises(ValueError, match="block 1 does not match"):
        _fresh_r3(sim).restore([(b"other", log[0][1])])
    used = sim.replicas["r3"]
    assert isinstance(used, PbftReplica)
    with pytest.raises(ValueError, match="before any event"):
        used.restore(log)


def test_suspect_primary_starts_a_view_change_once_and_only_for_the_current_view() -> None:
    ids = identities("r", 4)
    validators = {i.name: i.address for i in ids}
    backup = PbftReplica(ids[1], validators, honest_validate, CONFIG)
    assert backup.suspect_primary(1) == []  # not the view it is in: nothing
    actions = backup.suspect_primary(0)
    assert backup.view == 1 and not backup.active
    sent = [a for a in actions if isinstance(a, Send)]
    assert len(sent) == 1 and sent[0].to is None
    vc = parse_message(sent[0].message, validators, CONFIG.max_message_bytes, SignatureChecker(DOMAIN))
    assert isinstance(vc, ViewChangeMessage) and vc.view == 1 and vc.sender == "r1"
    assert backup.suspect_primary(0) == []  # the view has moved on
