"""The PoW attack of the paper's threshold: a withholding (selfish) miner, as a wrapper around ``PowMiner``.

Owns the withholding strategy: mine a private chain from genesis, hide it, and publish it once it
outweighs the public chain after the public one made a block final (a double spend). The generic
attacks (``Silent``, ``Garbage``, ``Replay``, ``TamperProposals``) wrap a miner as they wrap a PBFT
replica and live with them in ``bmoe.consensus.byzantine``.
Must not know: PoW internals beyond ``PowMiner``'s public tip and reported height.
"""

from __future__ import annotations

from collections.abc import Mapping

from bmoe.consensus.byzantine import Behaviour
from bmoe.consensus.engine import Action, Deliver, Event, Send, Tick, Validate
from bmoe.experiments.pow_network.miner import PowConfig, PowMiner
from bmoe.ledger.keys import Identity


class WithholdingMiner(Behaviour):
    """Mines a private chain from genesis, hiding it, and publishes it once it outweighs the public chain
    and the public chain has a block ``k`` deep that the private one replaces (a double spend).

    A shadow miner with no hash power follows the public chain. After publishing, the miner is
    honest again (it sees and extends the best chain). ``inner`` is the mining ``PowMiner``.
    """

    label = "withholding"
    inner: PowMiner

    def __init__(self, identity: Identity, miners: Mapping[str, str], validate: Validate, share: float,
                 config: PowConfig | None = None) -> None:
        super().__init__(PowMiner(identity, miners, validate, share, config))
        self.shadow = PowMiner(identity, miners, validate, 0.0, config)
        self.withheld: list[bytes] = []
        self.released_at: float | None = None
        self.now = 0.0

    def handle(self, event: Event) -> list[Action]:
        if isinstance(event, Tick):
            self.now = max(self.now, event.now)
        if self.released_at is not None:
            return self.inner.handle(event)
        out: list[Action] = []
        if isinstance(event, Deliver):  # the public chain: only the shadow sees it
            out += [a for a in self.shadow.handle(event) if isinstance(a, Send)]
        else:
            if isinstance(event, Tick):
                self.shadow.handle(event)
            for action in self.inner.handle(event):
                if isinstance(action, Send):
                    self.withheld.append(action.message)
                else:
                    out.append(action)
        if self.shadow.last_reported >= 1 and self.inner.tip.total_work > self.shadow.tip.total_work:
            self.released_at = self.now
            out += [Send(None, m) for m in self.withheld]
            self.withheld = []
        return out
