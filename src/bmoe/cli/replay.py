"""``bmoe replay``: regenerate a verified generation from its receipt, the ledger and the store (docs/serving.md).

RECEIPT is a JSON file holding a receipt (what ``bmoe serve --verified`` returns in a response's ``bmoe.receipt``,
or a whole response) or the id of a receipt in LEDGER_DIR's ``receipts.jsonl``. The chain is replayed, the tokens
regenerated from the accepted outputs and compared with the receipt's digests, and a share of the expert calls
re-computed with the ledger's experts. Anything that does not match is one line and exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bmoe.cli.errors import UserError, fail
from bmoe.cli.finite import FiniteFloatRange
from bmoe.console import console


def read_receipt(value: str, ledger_dir: Path) -> dict[str, Any]:
    """The receipt a file holds (a receipt, or a response carrying one), or the one with id ``value`` in
    ``ledger_dir``'s receipts."""
    path = Path(value)
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"{path}: not a JSON file ({err})") from None
        data = data.get("bmoe", {}).get("receipt", data) if isinstance(data, dict) else data
        if not isinstance(data, dict) or "completion" not in data:
            raise UserError(f"{path}: holds no receipt (no 'completion')")
        return data
    from bmoe.run.generation import RECEIPTS_FILE

    receipts = ledger_dir / RECEIPTS_FILE
    if receipts.is_file():
        for line in receipts.read_text(encoding="utf-8").splitlines():
            receipt = json.loads(line)["receipt"]  # {"receipt", "prompt", "text"}: bmoe serve --verified
            if receipt.get("id") == value:
                return receipt
    raise UserError(f"{value}: neither a receipt file nor a receipt id in {receipts}")


@click.command("replay")
@click.argument("receipt")
@click.option("--ledger-dir", type=click.Path(path_type=Path), required=True,
              help="the verified server's ledger directory (`bmoe serve --verified --ledger-dir`)")
@click.option("--check", type=FiniteFloatRange(min=0.0, max=1.0, min_open=True), default=1.0, show_default=True,
              help="share of the generation's expert calls re-computed with the ledger's experts")
@click.option("--seed", type=int, default=0, show_default=True, help="draws the calls re-computed when --check < 1")
def replay_command(receipt: str, ledger_dir: Path, check: float, seed: int) -> None:
    """Regenerate a verified generation from its receipt, the ledger and the store, and re-check its expert calls."""
    from bmoe.ledger.chainstore import ChainStore
    from bmoe.ledger.errors import LedgerError
    from bmoe.moe.payloads import PayloadError
    from bmoe.protocol.generation.replay import ReplayError, replay_receipt
    from bmoe.run.generation import CHAIN_FILE, STORE_DIR
    from bmoe.storage import DirectoryStore
    from bmoe.storage.errors import StorageError

    if not (ledger_dir / CHAIN_FILE).is_file():
        raise UserError(f"--ledger-dir {ledger_dir}: no {CHAIN_FILE} (not a verified server's ledger directory)")
    found = read_receipt(receipt, ledger_dir)
    try:
        with ChainStore(ledger_dir / CHAIN_FILE, readonly=True) as chain:
            report = replay_receipt(found, chain.iter_blocks(), DirectoryStore(ledger_dir / STORE_DIR), check, seed)
    except (ReplayError, LedgerError, PayloadError, StorageError) as err:
        fail(f"replay refused: {err}")
        return
    console.print(f"replayed {found.get('id', receipt)}: {len(report.tokens)} tokens from {report.chunks} sealed "
                  f"chunks ({report.calls} recorded calls), no expert run", highlight=False)
    console.print(f"re-checked {report.check.rechecked} expert calls with the ledger's experts: "
                  f"{len(report.check.wrong)} differ from the accepted outputs", highlight=False)
    if not report.prompt_match:
        fail("the request object's prompt is not the receipt's")
    if not report.tokens_match:
        fail("the regenerated tokens are not the receipt's completion")
    if report.check.wrong:
        fail("accepted outputs that the ledger's experts do not give: " + ", ".join(report.check.wrong[:5]))
    console.print("OK: the same tokens, bit for bit", highlight=False)
