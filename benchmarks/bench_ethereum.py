"""Gas per round and rounds sealed per second of bmoe's ledger contract on anvil, for a realistic round.

A real B-MoE training (digits, N = 10 experts, K = 3, M = 10 edges, 2 colluding edges, stake on, exact
comparison) runs in process; then anvil starts and every sealed block is posted, in order, as one
``sealBlock`` transaction, exactly as a validator seals it: records by replay, ABI encoding, local signing,
the estimate, the transaction mined and its receipt. Printed from this one run: the gas of each kind of
block (the genesis, a round with and without misbehaviour records), per commitment, against the per-
transaction cap of EIP-7825 (2**24), and sealing time against the round's own training time.

    python benchmarks/bench_ethereum.py [--rounds 30] [--block-time SECONDS]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bmoe.ethereum.accounts import account_from_key, derive_eth_account
from bmoe.ethereum.anvil import DEV_CHAIN_ID, DEV_KEY, Anvil
from bmoe.ethereum.contract import LedgerContract
from bmoe.ethereum.node import open_node
from bmoe.ethereum.records import BlockRecords, block_records, enrolment_of
from bmoe.ethereum.sender import TX_GAS_CAP, TransactionSender, fund
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.state import LedgerState
from bmoe.run.config import RunConfig
from bmoe.run.session import Session

CONFIG = RunConfig(dataset="digits", num_experts=10, top_k=3, num_edges=10, hidden=64, batch_size=100, lr=0.2,
                   eval_every=1000, difficulty=4, seed=5, malicious_ratio=0.2, stake=1000, reward=1, slash=10,
                   min_stake=0)


def train(rounds: int, run_dir: Path) -> tuple[list, float]:
    """The sealed blocks of a ``rounds``-round training, and its seconds per round (PoW sealing included)."""
    config = CONFIG.replace(rounds=rounds)
    started = time.perf_counter()
    with Session(config, run_dir=run_dir) as session:
        session.train()
    seconds = time.perf_counter() - started
    with ChainStore(run_dir / "chain.sqlite") as chain:
        return list(chain.iter_blocks()), seconds / rounds


def describe(records: BlockRecords) -> str:
    return (f"{len(records.commitments)} commitments, {len(records.decisions)} decisions, "
            f"{sum(len(d.supporters) for d in records.decisions)} supporters, {len(records.misbehaviours)} "
            f"misbehaviour records, {len(records.disputes)} disputes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--block-time", type=float, default=None,
                        help="anvil mines every SECONDS instead of a block per transaction")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        blocks, train_seconds = train(args.rounds, Path(tmp) / "run")
    with Anvil(block_time=args.block_time) as node:
        web3 = open_node(node.url, DEV_CHAIN_ID)
        validator = derive_eth_account(CONFIG.seed, "validator-0")
        fund(TransactionSender(web3, account_from_key(DEV_KEY), DEV_CHAIN_ID), [validator.address], 10**21)
        ledger, deployed = LedgerContract.deploy(node.url, DEV_CHAIN_ID, validator,
                                                 enrolment_of(blocks[0].transactions[0].payload, [validator.address]))
        state, rows = LedgerState(), []
        sealing_started = time.perf_counter()
        for block in blocks:
            started = time.perf_counter()
            records, state = block_records(state, block)
            translated = time.perf_counter()
            sent = ledger.seal_block(records)
            rows.append((records, sent.gas_used, translated - started, time.perf_counter() - translated))
        sealing_seconds = time.perf_counter() - sealing_started
        assert ledger.head()[1] == state.head and ledger.expert_cids() == state.expert_cids

    rounds = rows[1:]
    gas = [g for _, g, _, _ in rounds]
    plain = [g for r, g, _, _ in rounds if not r.misbehaviours]
    accused = [g for r, g, _, _ in rounds if r.misbehaviours]
    commitments = statistics.mean(len(r.commitments) for r, _, _, _ in rounds)
    seal_s = statistics.mean(s for _, _, _, s in rounds)
    translate_s = statistics.mean(t for _, _, t, _ in rounds)
    mode = f"a block every {args.block_time:g} s" if args.block_time else "a block per transaction"
    print(f"BmoeLedger on anvil ({mode}), N={CONFIG.num_experts} K={CONFIG.top_k} M={CONFIG.num_edges}, "
          f"{len(rounds)} training rounds of {CONFIG.batch_size} digits, {CONFIG.malicious_edges} colluders, stake on")
    print(f"deploy (enrolment): {deployed.gas_used} gas")
    print(f"block 0 (genesis, no round): {rows[0][1]} gas")
    print(f"a round, e.g. block {rounds[0][0].header.height}: {describe(rounds[0][0])}")
    print(f"gas per round: mean {statistics.mean(gas):.0f}, min {min(gas)}, max {max(gas)} "
          f"({max(gas) / TX_GAS_CAP:.1%} of the EIP-7825 per-transaction cap)")
    if plain and accused:
        print(f"  rounds without misbehaviour records: {statistics.mean(plain):.0f}; "
              f"with: {statistics.mean(accused):.0f}")
    print(f"gas per commitment (round gas / commitments, decisions and events included): "
          f"{statistics.mean(gas) / commitments:.0f}")
    print(f"rounds sealed per second: {len(rows) / sealing_seconds:.1f} "
          f"(records by replay {translate_s / (translate_s + seal_s):.0%} of it, the transaction the rest)")
    print(f"sealing on anvil per round / training the round in process: {(translate_s + seal_s) / train_seconds:.2f}")


if __name__ == "__main__":
    main()
