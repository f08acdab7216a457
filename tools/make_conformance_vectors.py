"""Record the ledger conformance vectors (src/bmoe/ledger/conformance/vectors) from the reference backend.

A real seeded B-MoE run in process (synthetic data, N=4, K=2, M=5, two always-on attackers, stake on, two
training rounds and one inference) is sealed into a chain; its transactions become templates (addresses
written ``@name``). Refusal vectors insert one bad transaction into a valid block and record the reason
the reference ``LedgerNode`` gives; every block's state summary and root are recorded by replay.

    .venv/bin/python tools/make_conformance_vectors.py      # rewrites the vectors; review the diff
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.conformance import CONSENSUS_PLACEHOLDER, open_vector, sign_item
from bmoe.ledger.keys import Identity, derive_identity
from bmoe.ledger.node import LedgerNode
from bmoe.ledger.state import state_root
from bmoe.run.config import RunConfig
from bmoe.run.session import Session

OUT = Path(__file__).resolve().parents[1] / "src" / "bmoe" / "ledger" / "conformance" / "vectors"
SEED = 11
NAMES = ["publisher", "validator-0", *(f"edge-{i}" for i in range(5)), "stranger"]


def reference_ledger(proposer: Identity, genesis: dict[str, Any]) -> tuple[LedgerNode, dict[str, Any]]:
    """bmoe's own ledger in memory, sealing by PoW at difficulty 0 (the vectors judge the state machine)."""
    return LedgerNode(proposer, 0, None), {"engine": "pow", "difficulty": 0}


def _run(run_dir: Path) -> None:
    config = RunConfig(dataset="synthetic", num_experts=4, top_k=2, num_edges=5, hidden=16, batch_size=32, lr=0.2,
                       eval_every=100, difficulty=0, seed=SEED, malicious_ratio=0.4, attack="gaussian",
                       attack_params={"probability": 1.0}, collude=False, stake=1000, reward=1, slash=100)
    with Session(config, run_dir=run_dir) as session:
        session.train(rounds=2)
        x, y = session.dataset.x_test[:16], session.dataset.y_test[:16]
        session.infer(x, y)


def _templates(run_dir: Path) -> list[dict[str, Any]]:
    addresses = {derive_identity(SEED, name).address: f"@{name}" for name in NAMES}

    def template(value: Any) -> Any:
        if isinstance(value, str):
            return addresses.get(value, value)
        if isinstance(value, list):
            return [template(v) for v in value]
        if isinstance(value, dict):
            return {addresses.get(k, k): template(v) for k, v in value.items()}
        return value

    blocks = []
    with ChainStore(run_dir / "chain.sqlite") as chain:
        for block in chain.iter_blocks():
            items = []
            for tx in block.transactions:
                payload = template(dict(tx.payload))
                if tx.kind == "genesis":
                    payload["consensus"] = CONSENSUS_PLACEHOLDER
                items.append({"signer": addresses[tx.sender][1:], "kind": tx.kind, "payload": payload})
            blocks.append({"timestamp": block.header.timestamp, "transactions": items})
    return blocks


def _record(vector: dict[str, Any]) -> dict[str, Any]:
    """Replay on the reference: each refusal's reason, each block's summary and state root."""
    vector = copy.deepcopy(vector)
    ledger, identities, names = open_vector(vector, reference_ledger)
    for height, block in enumerate(vector["blocks"]):
        for index, item in enumerate(block["transactions"]):
            tx = sign_item(item, identities, names, ledger.next_nonce(identities[item["signer"]].address))
            reason = ledger.check(tx)
            if "refused" in item:
                if reason is None:
                    raise SystemExit(f"{vector['name']}: block {height} item {index} ({item['kind']}) was accepted")
                item["refused"] = reason
                continue
            if reason is not None:
                raise SystemExit(f"{vector['name']}: block {height} item {index} ({item['kind']}) refused: {reason}")
            ledger.submit(tx)
        ledger.seal(int(block["timestamp"]))
        block["summary"] = json.loads(json.dumps(ledger.view().summary()))
        block["state_root"] = state_root(ledger.view())
    return vector


def _first(block: dict[str, Any], kind: str, after: int = 0) -> int:
    return next(i for i, item in enumerate(block["transactions"]) if item["kind"] == kind and i >= after)


def _refusals(blocks: list[dict[str, Any]]) -> dict[str, tuple[str, int, dict[str, Any]]]:
    """name -> (description, where to insert it in block 1, the bad item)."""
    round1 = blocks[1]["transactions"]
    task, activation = _first(blocks[1], "task"), _first(blocks[1], "activation")
    commit = _first(blocks[1], "commitment")
    accept = _first(blocks[1], "acceptance")
    misbehaviour = _first(blocks[1], "misbehaviour")
    accused = round1[misbehaviour]["payload"]["edge"]
    agreeing = next(item["signer"] for item in round1[commit:accept] if item["kind"] == "commitment"
                    and f"@{item['signer']}" != accused)
    forged = copy.deepcopy(round1[accept])
    minority = round1[accept - 1]["payload"]["results"][0]  # the last committer's answer: an attacker's
    forged["payload"]["decisions"][0].update(cid=minority["cid"], digest=minority["digest"])
    false_accusation = copy.deepcopy(round1[misbehaviour])
    false_accusation["payload"]["edge"] = f"@{agreeing}"
    bad_gate = copy.deepcopy(round1[activation])
    bad_gate["payload"]["gate_cid"] = blocks[0]["transactions"][0]["payload"]["expert_cids"][0]
    return {
        "refuse_duplicate_commitment": ("an edge commits twice for the same expert and phase", commit + 1,
                                        {**copy.deepcopy(round1[commit]), "refused": True}),
        "refuse_unenrolled_committer": ("a key that is not an enrolled edge commits", commit + 1,
                                        {**copy.deepcopy(round1[commit]), "signer": "stranger", "refused": True}),
        "refuse_forged_decision": ("a validator accepts an attacker's answer that the honest majority contradicts",
                                   accept, {**forged, "refused": True}),
        "refuse_task_not_from_publisher": ("an edge publishes a task", task,
                                           {**copy.deepcopy(round1[task]), "signer": "edge-0", "refused": True}),
        "refuse_bad_signature": ("a commitment whose signature does not verify", commit + 1,
                                 {**copy.deepcopy(round1[commit + 1]), "corrupt_signature": True, "refused": True}),
        "refuse_replayed_nonce": ("a validator reuses its last nonce", accept,
                                  {**copy.deepcopy(round1[accept]), "nonce_offset": -1, "refused": True}),
        "refuse_false_accusation": ("a misbehaviour record against an edge that agreed with the accepted answer",
                                    misbehaviour, {**false_accusation, "refused": True}),
        "refuse_activation_of_another_gate": ("an activation names a gate that is not the ledger's", activation,
                                              {**bad_gate, "refused": True}),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run(Path(tmp) / "run")
        blocks = _templates(Path(tmp) / "run")
    base = {"seed": SEED, "names": NAMES, "proposer": "validator-0"}
    vectors = {"accept_training_and_inference": {
        **base, "description": "two training rounds and one inference among two always-on attackers, with stake: "
                               "commitments, decisions, misbehaviour records, slashes, rewards, expert and gate "
                               "updates", "blocks": blocks}}
    for name, (description, position, item) in _refusals(blocks).items():
        changed = copy.deepcopy(blocks[:2])
        changed[1]["transactions"].insert(position, item)
        vectors[name] = {**base, "description": f"refused: {description}; the rest of the block seals unchanged",
                         "blocks": changed}
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for name, vector in vectors.items():
        recorded = _record({"name": name, **vector})
        (OUT / f"{name}.json").write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        refusals = [item["refused"] for b in recorded["blocks"] for item in b["transactions"] if "refused" in item]
        print(name, refusals)


if __name__ == "__main__":
    main()
