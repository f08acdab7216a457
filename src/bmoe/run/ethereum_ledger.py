"""A session's ledger sealed on Ethereum (``consensus: ethereum``): the glue between ``Session`` and
``bmoe.ethereum``, imported only by runs that use it (web3 is the optional ``ethereum`` extra).

Owns, for validator-0 of an in-process run: the sealer its ledger node is built with; deploying the run's
contract when the genesis is written (the section the genesis records names it), through which that
sealer then seals; on resume, reconnecting to the contract the genesis names (chain id, code, sealing
account checked) and catching up with blocks it sealed after the local chain's head.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bmoe.ledger.node import LedgerNode
from bmoe.ledger.state import LedgerState
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.setup import ConsensusSection, Identities
from bmoe.storage import BlobStore


def _modules() -> Any:
    try:
        from bmoe.ethereum import backend, sealer
    except ImportError as err:
        raise ConfigError(f"--ledger ethereum needs the ethereum extra (pip install 'bmoe[ethereum]'): {err}") from None
    return backend, sealer


def contract_sealer(store: BlobStore, state: Callable[[], LedgerState],
                    durable: Callable[[], object] | None) -> Any:
    """The ``EthereumSealer`` a session's ledger node is built with; its contract is set by :func:`deploying`
    (a new chain) or :func:`reconnecting` (a resumed one)."""
    _, sealer = _modules()
    return sealer.EthereumSealer(None, store, state, before_post=durable)


def deploying(sealer: Any, config: RunConfig, ids: Identities) -> ConsensusSection:
    """The genesis's consensus section for ``config``: deploys the contract, through which ``sealer`` then
    seals the node's blocks (block 0 included)."""
    backend, _ = _modules()
    account = backend.sealing_account(config.seed, ids.validator, config.eth_key)
    assert config.rpc_url is not None

    def section(payload: dict[str, object]) -> dict[str, object]:
        sealer.contract, recorded = backend.deploy_ledger(config.rpc_url, account, payload,
                                                          {ids.validator.address: account})
        return recorded

    return section


def reconnecting(node: LedgerNode, sealer: Any, store: BlobStore, config: RunConfig, ids: Identities) -> int:
    """Seal ``node``'s next blocks (by ``sealer``, the one it was built with) through the contract its genesis
    names; how many blocks it adopted from the contract (sealed there after the local head)."""
    backend, _ = _modules()
    genesis = node.view().genesis or {}
    account = backend.sealing_account(config.seed, ids.validator, config.eth_key)
    assert config.rpc_url is not None
    contract = backend.connect_ledger(config.rpc_url, genesis["consensus"], ids.validator, account)
    adopted = backend.catch_up(node, contract, store)
    sealer.contract = contract
    return adopted
