"""bmoe's ledger on Ethereum: the ``BmoeLedger`` contract's client, and what it needs around it.

* :mod:`~bmoe.ethereum.artifact` - the committed ABI and bytecode (the runtime needs no compiler);
* :mod:`~bmoe.ethereum.accounts` - Ethereum keys derived from the run's seed, or read from a key file;
* :mod:`~bmoe.ethereum.cids` - CIDs as the contract holds them: (sha2-256 digest, codec);
* :mod:`~bmoe.ethereum.records` - a sealed bmoe block as the contract's ``sealBlock`` arguments (pure);
* :mod:`~bmoe.ethereum.sender` - signed transactions with explicit nonces, receipts, revert reasons;
* :mod:`~bmoe.ethereum.contract` - ``LedgerContract``: connect (checked), deploy, seal, views;
* :mod:`~bmoe.ethereum.logs` - every sealed block and its records, read back from the contract's events;
* :mod:`~bmoe.ethereum.anvil` - a local anvil node for tests and benchmarks;
* :mod:`~bmoe.ethereum.errors` - the exceptions, each a one-line message.

The contract's source is ``contracts/BmoeLedger.vy``; its design is in ``docs/ethereum.md``.
"""
