"""Verified generation: the server's responses (its receipts.jsonl: the text, tokens, whether verified, their chunks
and the records against edges in them) and the generation sessions on the chain; an edge's records in generation
chunks, for its page; the links and labels the chunk page (``chunk.py``) shares."""

from __future__ import annotations

from bmoe.explorer.generation_index import (
    ChunkEntry,
    EdgeRecord,
    edge_records,
    sessions,
)
from bmoe.explorer.html import Cell, Html, cid_link, join, link, path_part, section, short, table, tag
from bmoe.explorer.lm_index import MANIFEST_ERRORS, Manifest, read_manifest
from bmoe.explorer.pages.payments import payments_section
from bmoe.explorer.pages.view import NotFound, View, block_link
from bmoe.explorer.receipts import RECEIPTS_FILE, ServedResponse, read_receipts, receipts_file
from bmoe.moe.payloads import PayloadError
from bmoe.protocol.generation.replay import ReplayError
from bmoe.storage import BlobStore, StorageError

RECORDS_ERRORS = (*MANIFEST_ERRORS, PayloadError, ReplayError, StorageError)


def chunk_href(generation: str, chunk: int) -> str:
    return f"/chunk/{path_part(generation)}/{chunk}"


def chunk_link(entry: ChunkEntry) -> Html:
    return link(chunk_href(entry.generation, entry.chunk), f"{entry.generation}/{entry.chunk}",
                title=f"block {entry.height}, transaction {entry.tx}")


def object_link(view: View, cid: str) -> Html:
    """A CID linked to its object page where the chain names it (the evidence), shortened otherwise."""
    return cid_link(cid) if cid in view.index.mentions else short(cid, 16)


def read_served_manifest(view: View, store: BlobStore) -> Manifest:
    """The served model's manifest: the trusted object the genesis names (its experts per layer and layers)."""
    return read_manifest(store, view.index.state.gate_cid)


def servedread_served_manifest(view: View) -> Manifest | None:
    try:
        with view.source.objects() as store:
            return read_served_manifest(view, store)
    except RECORDS_ERRORS:
        return None


def tokens_text(rows: tuple[tuple[int, int], ...]) -> str:
    """Tokens a record names, as (sequence, position)."""
    return ", ".join(f"({s}, {p})" for s, p in rows)


def slot_text(manifest: Manifest | None, slot: int) -> str:
    if manifest is None:
        return f"slot {slot}"
    layer, expert = manifest.config.layer_expert(slot)
    return f"layer {layer}, expert {expert}"


def _record_line(view: View, record: EdgeRecord, manifest: Manifest | None) -> Html:
    rows = tokens_text(record.rows)
    return join([view.who(record.edge), f" {record.reason} at {slot_text(manifest, record.slot)}",
                 f", tokens {rows}" if rows else "", " in ", chunk_link(record.chunk)])


def _verified(response: ServedResponse) -> Html:
    if response.verified:
        return tag("span", f"verified ({len(response.chunks)} chunks on the chain)", class_="ok")
    if not response.claims_verified:
        return tag("span", "not verified (in process)", class_="muted")
    if not response.chunks:
        return tag("span", "names no chunk", class_="bad")
    return tag("span", "not on the chain: chunk " + ", ".join(str(c.chunk) for c in response.missing), class_="bad")


def _response_row(view: View, response: ServedResponse, manifest: Manifest | None) -> list[Cell]:
    chunks = join((chunk_link(c.sealed) if c.sealed is not None else tag("span", f"{c.chunk}?", class_="bad")
                   for c in response.chunks), ", ")
    records = [_record_line(view, record, manifest)
               for record in edge_records(c.sealed for c in response.chunks if c.sealed is not None)]
    counts = (response.prompt_tokens, response.completion_tokens)
    tokens = f"{counts[0]} + {counts[1]}" if None not in counts else None
    return [tag("span", response.id, class_="mono", id=f"response-{response.id}"), response.prompt, response.text,
            tokens, response.finish_reason, _verified(response), chunks or "–",
            join(records, "; ") if records else "none"]


def generations(view: View) -> Html:
    if not view.generating:
        raise NotFound("this chain records no generation (bmoe serve --verified --ledger-dir DIR writes one)")
    chunks = view.generation_chunks
    manifest = servedread_served_manifest(view)
    path = receipts_file(view.source)
    receipts = read_receipts(path, chunks)
    rows = [_response_row(view, response, manifest) for response in receipts.responses]
    note = tag("p", f"The server's {RECEIPTS_FILE} (not on the ledger): each response's text as it was served, "
                    "verified when every chunk its receipt names is sealed on this audited chain.", class_="muted")
    responses = (table(("id", "prompt", "completion", "tokens (prompt + completion)", "finish", "verified",
                        "chunks", "records against edges in its chunks"), rows, id_="responses")
                 if rows else tag("p", f"No {RECEIPTS_FILE} responses.", class_="muted"))
    bad = [[number, why] for number, why in receipts.unreadable]
    session_rows = [[s.generation, join((chunk_link(c) for c in s.chunks), ", "), s.total("tokens"),
                     s.total("calls"), s.total("checked"), s.disputes, s.records_against] for s in sessions(chunks)]
    body = join([section(f"Responses ({len(rows)})", note, responses,
                         table(("line", "not a receipt"), bad, id_="unreadable") if bad else ""),
                 section(f"Generation sessions on the chain ({len(session_rows)})",
                         table(("generation", "chunks", "tokens", "calls", "calls checked", "disputes",
                                "records against"), session_rows, id_="sessions")),
                 payments_section(view)])
    return view.page("Generations", body, active="/generations")


def edge_section(view: View, address: str) -> Html:
    """An edge's records in generation chunks, for its page (nothing for a chain that generated nothing)."""
    if not view.generation_chunks:
        return Html("")
    records = edge_records(view.generation_chunks, address)
    manifest = servedread_served_manifest(view)
    rows = [[chunk_link(r.chunk), block_link(r.chunk.height), slot_text(manifest, r.slot), r.reason,
             tokens_text(r.rows) or "–"] for r in records]
    return section(f"Generation records ({len(rows)})",
                   table(("chunk", "block", "call", "record", "tokens (sequence, position)"), rows,
                         id_="generation-records") if rows else tag("p", "None.", class_="muted"))
