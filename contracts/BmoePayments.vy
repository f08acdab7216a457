# pragma version 0.4.3
# pragma evm-version prague
# pragma optimize gas
"""
@title BmoePayments
@license Apache-2.0
@notice Payments for tokens generated on bmoe: deposits, one settlement per sealed chunk, withdrawals.

    Accounts are 32-byte ids: an edge's or a validator's bmoe key (its Ed25519 public key), or for a requester
    the SHA-256 of "bmoe-account:" and its name (src/bmoe/ethereum/payments.py). Balances are in wei, one wei a
    bmoe unit.

    deposit(account): anyone pays ether into an account; the first depositor of an account owns it (may withdraw
    from it) unless an enrolled validator bound an owner first (bindOwner: how an edge or a validator names the
    Ethereum address its earnings go to).

    settle(generation, chunk, payers, charges, payees, amounts): one bmoe settlement transaction, by an enrolled
    validator. It reverts when the chunk was settled already, the lists differ in length, a payer would overdraw,
    or what the payees receive does not add up to what the payers pay. The price rule and the split are checked by
    bmoe's own ledger and audit, off chain; the contract holds the money and refuses what cannot add up.

    withdraw(account, amount): the account's owner takes ether out, never more than the account holds.
"""

VERSION: public(constant(String[16])) = "bmoe-payments/1"

MAX_VALIDATORS: constant(uint256) = 128
MAX_PAYERS: constant(uint256) = 64  # payers in one chunk (at most the sequences decoded together)
MAX_PAYEES: constant(uint256) = 128  # the edges and the validator paid for one chunk

event Deposited:
    account: indexed(bytes32)
    sender: address
    amount: uint256

event Settled:
    generation: indexed(bytes32)
    chunk: uint256
    charged: uint256

event Withdrawn:
    account: indexed(bytes32)
    recipient: address
    amount: uint256

isValidator: public(HashMap[address, bool])
balanceOf: public(HashMap[bytes32, uint256])
ownerOf: public(HashMap[bytes32, address])
settled: public(HashMap[bytes32, bool])  # keccak256(generation, chunk) -> settled
settlementCount: public(uint256)


@deploy
def __init__(validators: DynArray[address, MAX_VALIDATORS]):
    assert len(validators) > 0, "no validators"
    for validator: address in validators:
        assert validator != empty(address), "a zero validator address"
        self.isValidator[validator] = True


@external
@payable
def deposit(account: bytes32):
    assert msg.value > 0, "nothing deposited"
    if self.ownerOf[account] == empty(address):
        self.ownerOf[account] = msg.sender
    self.balanceOf[account] += msg.value
    log Deposited(account=account, sender=msg.sender, amount=msg.value)


@external
def bindOwner(account: bytes32, owner: address):
    assert self.isValidator[msg.sender], "not a validator"
    assert owner != empty(address), "a zero owner"
    assert self.ownerOf[account] == empty(address), "the account has an owner"
    self.ownerOf[account] = owner


@external
def settle(generation: bytes32, chunk: uint256, payers: DynArray[bytes32, MAX_PAYERS],
           charges: DynArray[uint256, MAX_PAYERS], payees: DynArray[bytes32, MAX_PAYEES],
           amounts: DynArray[uint256, MAX_PAYEES]):
    assert self.isValidator[msg.sender], "not a validator"
    assert len(payers) == len(charges), "payers and charges differ in length"
    assert len(payees) == len(amounts), "payees and amounts differ in length"
    key: bytes32 = keccak256(abi_encode(generation, chunk))
    assert not self.settled[key], "chunk already settled"
    charged: uint256 = 0
    for index: uint256 in range(len(payers), bound=MAX_PAYERS):
        payer: bytes32 = payers[index]
        assert self.balanceOf[payer] >= charges[index], "overdraw"
        self.balanceOf[payer] -= charges[index]
        charged += charges[index]
    credited: uint256 = 0
    for index: uint256 in range(len(payees), bound=MAX_PAYEES):
        self.balanceOf[payees[index]] += amounts[index]
        credited += amounts[index]
    assert credited == charged, "totals differ"
    self.settled[key] = True
    self.settlementCount += 1
    log Settled(generation=generation, chunk=chunk, charged=charged)


@external
@nonreentrant
def withdraw(account: bytes32, amount: uint256):
    assert self.ownerOf[account] == msg.sender, "not the account's owner"
    assert amount <= self.balanceOf[account], "overdraw"
    self.balanceOf[account] -= amount
    send(msg.sender, amount)
    log Withdrawn(account=account, recipient=msg.sender, amount=amount)
