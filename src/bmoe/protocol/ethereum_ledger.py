"""A session's ledger sealed on Ethereum (``consensus: ethereum``): the glue between ``Session`` and
``bmoe.ethereum``, imported only by runs that use it (web3 is the optional ``ethereum`` extra).

Owns, for validator-0 of an in-process run: deploying the run's contract when the genesis is written
(the section the genesis records names it) and attaching the sealer; on resume, reconnecting to the
contract the genesis names (chain id, code, sealing account checked) and catching up with blocks it
sealed after the local chain's head.
"""

from __future__ import annotations

from typing import Any

from bmoe.ledger.node import LedgerNode
from bmoe.protocol.config import ConfigError, RunConfig
from bmoe.protocol.setup import ConsensusSection, Identities
from bmoe.storage import BlobStore


def _modules() -> Any:
    try:
        from bmoe.ethereum import backend, sealer
    except ImportError as err:
        raise ConfigError(f"--ledger ethereum needs the ethereum extra (pip install 'bmoe[ethereum]'): {err}") from None
    return backend, sealer


def deploying(node: LedgerNode, store: BlobStore, config: RunConfig, ids: Identities) -> ConsensusSection:
    """The genesis's consensus section for ``config``: deploys the contract, then seals ``node``'s blocks
    through it (block 0 included)."""
    backend, sealer = _modules()
    account = backend.sealing_account(config.seed, ids.validator, config.eth_key)
    assert config.rpc_url is not None

    def section(payload: dict[str, object]) -> dict[str, object]:
        contract, recorded = backend.deploy_ledger(config.rpc_url, account, payload, {ids.validator.address: account})
        node.sealer = sealer.EthereumSealer(contract, store, lambda: node.state, before_post=node.before_persist)
        return recorded

    return section


def reconnecting(node: LedgerNode, store: BlobStore, config: RunConfig, ids: Identities) -> int:
    """Seal ``node``'s next blocks through the contract its genesis names; how many blocks it adopted from
    the contract (sealed there after the local head)."""
    backend, sealer = _modules()
    genesis = node.state.genesis or {}
    account = backend.sealing_account(config.seed, ids.validator, config.eth_key)
    assert config.rpc_url is not None
    contract = backend.connect_ledger(config.rpc_url, genesis["consensus"], ids.validator, account)
    adopted = backend.catch_up(node, contract, store)
    node.sealer = sealer.EthereumSealer(contract, store, lambda: node.state, before_post=node.before_persist)
    return adopted
