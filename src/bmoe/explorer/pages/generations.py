"""Verified generation: the server's responses (its receipts.jsonl: the text, tokens, whether verified, their chunks
and the records against edges in them), the generation sessions on the chain, and one sealed chunk (its calls, the
experts of each layer every token was routed to, the records against edges with their evidence); an edge's records
in generation chunks, for its page."""

from __future__ import annotations

from collections import defaultdict

from bmoe.explorer.generation_index import (
    ChunkEntry,
    EdgeRecord,
    TokenRoute,
    edge_records,
    find_chunk,
    sessions,
    token_routes,
)
from bmoe.explorer.html import Cell, Html, cid_link, join, link, pairs, path_part, section, short, table, tag
from bmoe.explorer.lm_index import MANIFEST_ERRORS, Manifest, read_manifest
from bmoe.explorer.pages.view import NotFound, View, block_link
from bmoe.explorer.receipts import RECEIPTS_FILE, ServedResponse, read_receipts, receipts_file
from bmoe.moe.payloads import PayloadError
from bmoe.protocol.generation.records import CallRecord, ChunkRecords
from bmoe.protocol.generation.replay import ReplayError, chunk_records
from bmoe.storage import BlobStore, StorageError

MAX_ROUTES = 2000  # (sequence, position) rows a chunk page lists
RECORDS_ERRORS = (*MANIFEST_ERRORS, PayloadError, ReplayError, StorageError)


def chunk_href(generation: str, chunk: int) -> str:
    return f"/chunk/{path_part(generation)}/{chunk}"


def chunk_link(entry: ChunkEntry) -> Html:
    return link(chunk_href(entry.generation, entry.chunk), f"{entry.generation}/{entry.chunk}",
                title=f"block {entry.height}, transaction {entry.tx}")


def _object(view: View, cid: str) -> Html:
    """A CID linked to its object page where the chain names it (the evidence), shortened otherwise."""
    return cid_link(cid) if cid in view.index.mentions else short(cid, 16)


def _manifest(view: View, store: BlobStore) -> Manifest:
    """The served model's manifest: the trusted object the genesis names (its experts per layer and layers)."""
    return read_manifest(store, view.index.state.gate_cid)


def _manifest_or_none(view: View) -> Manifest | None:
    try:
        with view.source.objects() as store:
            return _manifest(view, store)
    except RECORDS_ERRORS:
        return None


def _tokens(rows: tuple[tuple[int, int], ...]) -> str:
    """Tokens a record names, as (sequence, position)."""
    return ", ".join(f"({s}, {p})" for s, p in rows)


def _slot(manifest: Manifest | None, slot: int) -> str:
    if manifest is None:
        return f"slot {slot}"
    layer, expert = manifest.config.layer_expert(slot)
    return f"layer {layer}, expert {expert}"


def _record_line(view: View, record: EdgeRecord, manifest: Manifest | None) -> Html:
    rows = _tokens(record.rows)
    return join([view.who(record.edge), f" {record.reason} at {_slot(manifest, record.slot)}",
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
    manifest = _manifest_or_none(view)
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
                                "records against"), session_rows, id_="sessions"))])
    return view.page("Generations", body, active="/generations")


def _calls(view: View, records: ChunkRecords, manifest: Manifest) -> Html:
    rows = [[call.slot, *manifest.config.layer_expert(call.slot), int(call.inputs.shape[0]), view.who(call.primary),
             view.edges(tuple(call.replicas)), "yes" if call.checked else "no",
             tag("span", "disputed", class_="bad") if call.disputed else "no",
             "accepted" if call.fast == call.accepted else tag("span", "replaced: rolled back", class_="bad"),
             _object(view, call.accepted)]
            for call in records.calls]
    note = tag("p", "A fast-path answer that was replaced rolled its sequences back to their first wrong token: the "
                    "tokens from there were discarded and generated again in the next chunk.", class_="muted")
    return join([table(("slot", "layer", "expert", "rows", "primary (fast path)", "replicas", "checked", "disputed",
                        "fast path's answer", "accepted outputs"), rows, id_="calls"), note])


def _route_cell(route: TokenRoute, layer: int, against: dict[tuple[int, int, int, int], list[str]]) -> Html:
    parts = []
    for expert in route.experts[layer]:
        accused = against.get((*route.token, layer, expert))
        parts.append(tag("span", expert, class_="bad", title=f"recorded against {', '.join(accused)}")
                     if accused else Html(str(expert)))
    return tag("td", Html(", ".join(parts)) if parts else "–")


def _routes(view: View, records: ChunkRecords, entry: ChunkEntry, manifest: Manifest) -> Html:
    config = manifest.config
    against: dict[tuple[int, int, int, int], list[str]] = defaultdict(list)
    for record in edge_records([entry]):
        layer, expert = config.layer_expert(record.slot)
        for sequence, position in record.rows:
            against[(sequence, position, layer, expert)].append(view.index.name(record.edge))
    routes = token_routes(records, config.num_local_experts, config.num_hidden_layers)
    head = tag("tr", tag("th", "sequence"), tag("th", "position"),
               *(tag("th", f"layer {layer}") for layer in range(config.num_hidden_layers)))
    body = join(tag("tr", tag("td", route.token[0]), tag("td", route.token[1]),
                    *(_route_cell(route, layer, against) for layer in range(config.num_hidden_layers)))
                for route in routes[:MAX_ROUTES])
    more = (tag("p", f"The first {MAX_ROUTES} of {len(routes)} tokens.", class_="muted")
            if len(routes) > MAX_ROUTES else "")
    note = tag("p", "Each token (the engine's sequence id, the token's position in it) and the experts of each layer "
                    "its rows went to in this chunk's calls; in red, a call recorded against an edge at that token.",
               class_="muted")
    return join([note, tag("table", head, body, id="routes"), more])


def _evidence(view: View, entry: ChunkEntry, record: EdgeRecord, calls: dict[int, CallRecord]) -> Html:
    dispute = next((d for d in entry.payload["disputes"] if d["slot"] == record.slot), None)
    committed = dispute["commitments"].get(record.edge) if dispute is not None else None
    if dispute is None:
        return Html("–")
    parts: list[Cell] = ["accepted ", _object(view, dispute["accepted"])]
    if committed is not None:
        parts += ["; it committed ", _object(view, committed["outputs"])]
    call = calls.get(record.slot)
    if call is not None:
        parts += [f"; inputs sha256 {call.inputs_sha256[:12]}…"]
    return join(parts)


def _records(view: View, entry: ChunkEntry, records: ChunkRecords | None, manifest: Manifest | None) -> Html:
    calls = {call.slot: call for call in records.calls} if records is not None else {}
    rows = []
    for record in edge_records([entry]):
        layer, expert = manifest.config.layer_expert(record.slot) if manifest is not None else (None, None)
        rows.append([view.who(record.edge), record.slot, layer, expert, record.reason,
                     _tokens(record.rows) or "–", _evidence(view, entry, record, calls)])
    if not rows:
        return tag("p", "None: every edge asked agreed with the accepted outputs.", class_="muted")
    return table(("edge", "slot", "layer", "expert", "reason", "tokens (sequence, position)", "evidence"), rows,
                 id_="records")


def chunk(view: View, generation: str, number: str, store: BlobStore) -> Html:
    entry = find_chunk(view.generation_chunks, generation, int(number)) if number.isdecimal() else None
    if entry is None:
        raise NotFound(f"no chunk {number!r} of generation {generation!r} on the chain")
    payload = entry.payload
    try:
        manifest: Manifest | None = _manifest(view, store)
        records: ChunkRecords | None = chunk_records(payload, store)
        why = ""
    except RECORDS_ERRORS as err:
        manifest, records, why = None, None, str(err)
    neighbours = [chunk_link(c) for c in (find_chunk(view.generation_chunks, generation, entry.chunk - 1),
                                          find_chunk(view.generation_chunks, generation, entry.chunk + 1))
                  if c is not None]
    facts = pairs([("generation", generation), ("chunk", entry.chunk), ("block", block_link(entry.height)),
                   ("transaction", tag("span", entry.tx, class_="mono")), ("tokens", payload["tokens"]),
                   ("calls", payload["calls"]), ("rows", payload["rows"]), ("calls checked", payload["checked"]),
                   ("verification seed", payload["seed"]), ("policy", records.policy if records else None),
                   ("outputs root", short(payload["outputs_root"], 16)), ("records", cid_link(payload["records"])),
                   ("disputes", len(payload["disputes"])), ("records against", len(entry.records_against)),
                   ("neighbours", join(neighbours, " ") or "–")], id_="chunk-facts")
    parts = [facts]
    if records is not None and manifest is not None:
        parts += [section(f"Calls ({len(records.calls)})", _calls(view, records, manifest)),
                  section("Routes per token and layer", _routes(view, records, entry, manifest))]
    else:
        parts.append(tag("p", f"The chunk's records cannot be read: {why}", class_="bad"))
    parts.append(section(f"Records against edges ({len(entry.records_against)})",
                         _records(view, entry, records, manifest)))
    return view.page(f"Chunk {entry.chunk} of {generation}", join(parts), active="/generations")


def edge_section(view: View, address: str) -> Html:
    """An edge's records in generation chunks, for its page (nothing for a chain that generated nothing)."""
    if not view.generation_chunks:
        return Html("")
    records = edge_records(view.generation_chunks, address)
    manifest = _manifest_or_none(view)
    rows = [[chunk_link(r.chunk), block_link(r.chunk.height), _slot(manifest, r.slot), r.reason,
             _tokens(r.rows) or "–"] for r in records]
    return section(f"Generation records ({len(rows)})",
                   table(("chunk", "block", "call", "record", "tokens (sequence, position)"), rows,
                         id_="generation-records") if rows else tag("p", "None.", class_="muted"))
