"""The responses a verified server wrote to its ledger directory's ``receipts.jsonl``, read for the explorer.

Owns reading that file (``bmoe serve --verified --ledger-dir DIR``: one JSON line per response, ``{"receipt": the
receipt (``serve/receipt.py``), "prompt": its text, "text": the completion's text}``) and checking each response's
claims against the chain: every chunk its receipt names must be a sealed ``generation_chunk`` transaction at that
height with those records. The file is the server's, not the ledger's: a line that is not a receipt is reported,
never served as one. Read on every request (a server appends a line after its chunks are sealed). Must not know
HTML or HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmoe.explorer.generation_index import ChunkEntry
from bmoe.explorer.source import RunSource, Source
from bmoe.run.generation import RECEIPTS_FILE


@dataclass(frozen=True)
class NamedChunk:
    """A chunk a receipt names, and the sealed chunk it is on the chain (None: the chain holds no such chunk)."""

    chunk: int
    height: int
    tx: str
    records: str
    sealed: ChunkEntry | None


@dataclass(frozen=True)
class ServedResponse:
    """One response of the server as its receipts.jsonl line says, its chunks looked up on the chain."""

    line: int  # 1-based, in the file
    id: str
    prompt: str
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    claims_verified: bool  # the receipt's verification section says so
    generation: str | None
    request_cid: str | None
    chunks: tuple[NamedChunk, ...]

    @property
    def missing(self) -> list[NamedChunk]:
        return [c for c in self.chunks if c.sealed is None]

    @property
    def verified(self) -> bool:
        """Verified through B-MoE: its receipt says so and names chunks the chain holds, every one of them."""
        return self.claims_verified and bool(self.chunks) and not self.missing


@dataclass(frozen=True)
class Receipts:
    """The file's responses and the lines that are not one (line number, why)."""

    responses: tuple[ServedResponse, ...]
    unreadable: tuple[tuple[int, str], ...]


def receipts_file(source: Source) -> Path | None:
    """Where a run directory's receipts would be (None for a cluster: its server keeps them elsewhere)."""
    return source.run_dir / RECEIPTS_FILE if isinstance(source, RunSource) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _named(ledger: Mapping[str, Any], by_tx: Mapping[str, ChunkEntry]) -> tuple[NamedChunk, ...]:
    named = []
    for entry in ledger.get("chunks") or []:
        chunk, height, tx, records = (entry.get(key) for key in ("chunk", "height", "tx", "records"))
        if _int(chunk) is None or _int(height) is None or _text(tx) is None or _text(records) is None:
            raise ValueError("a chunk the receipt names lacks its chunk, height, tx or records")
        sealed = by_tx.get(tx)
        matches = sealed is not None and (sealed.height, sealed.payload["records"], sealed.chunk) == (
            height, records, chunk)
        named.append(NamedChunk(chunk, height, tx, records, sealed if matches else None))
    return tuple(named)


def _response(number: int, line: str, by_tx: Mapping[str, ChunkEntry]) -> ServedResponse:
    body = json.loads(line)
    receipt = body.get("receipt") if isinstance(body, dict) else None
    if not isinstance(receipt, dict) or _text(receipt.get("id")) is None:
        raise ValueError("no receipt with an id")
    prompt, completion = receipt.get("prompt") or {}, receipt.get("completion") or {}
    verification = receipt.get("verification") or {}
    ledger = receipt.get("ledger") or {}
    if not all(isinstance(part, dict) for part in (prompt, completion, verification, ledger)):
        raise ValueError("the receipt's prompt, completion, verification or ledger is not an object")
    return ServedResponse(number, receipt["id"], _text(body.get("prompt")) or "", _text(body.get("text")) or "",
                          _int(prompt.get("tokens")), _int(completion.get("tokens")),
                          _text(completion.get("finish_reason")), verification.get("verified") is True,
                          _text(ledger.get("generation")), _text(ledger.get("request")), _named(ledger, by_tx))


def read_receipts(path: Path | None, chunks: list[ChunkEntry]) -> Receipts:
    """The responses in ``path`` (none when there is no such file), each checked against the sealed ``chunks``."""
    if path is None or not path.is_file():
        return Receipts((), ())
    by_tx = {chunk.tx: chunk for chunk in chunks}
    responses, unreadable = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        return Receipts((), ((0, f"cannot read {path.name}: {err}"),))
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            responses.append(_response(number, line, by_tx))
        except (ValueError, AttributeError) as err:  # JSONDecodeError is a ValueError
            unreadable.append((number, str(err)))
    return Receipts(tuple(responses), tuple(unreadable))
