"""The exceptions of :mod:`bmoe.ethereum`: each ``str()`` is one line naming the problem."""

from __future__ import annotations


class EthereumError(Exception):
    """Base of every error of the Ethereum backend (one line)."""


class NodeUnreachable(EthereumError):
    """The RPC URL does not answer JSON-RPC."""


class WrongChain(EthereumError):
    """The node serves another chain than the one expected."""


class NotBmoeContract(EthereumError):
    """No contract at the address, or one that is not this version of bmoe's ledger."""


class AccountUnfunded(EthereumError):
    """The sealing account cannot pay for gas."""


class AccountKeyError(EthereumError):
    """An Ethereum key file that cannot be read or holds no valid key."""


class AnvilUnavailable(EthereumError):
    """anvil is not installed, or did not start."""


class RecordsError(EthereumError):
    """A bmoe block or genesis that the contract cannot record (named why)."""


class ContractReverted(EthereumError):
    """The contract refused a call; ``reason`` is its revert string."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(action, reason)
        self.action = action
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.action}: the contract refused: {self.reason}"
