"""One sealed chunk of a verified generation: its transaction's facts, its calls (slot as layer and expert, the
primary that answered on the fast path, the replicas, disputed or not, whether the fast answer stood, the accepted
outputs), the experts of each layer every token of its records was routed to, and the records against edges with
their evidence."""

from __future__ import annotations

from collections import defaultdict

from bmoe.explorer.generation_index import ChunkEntry, EdgeRecord, TokenRoute, edge_records, find_chunk, token_routes
from bmoe.explorer.html import Cell, Html, cid_link, join, pairs, section, short, table, tag
from bmoe.explorer.lm_index import Manifest
from bmoe.explorer.pages.generations import (
    RECORDS_ERRORS,
    chunk_link,
    object_link,
    read_served_manifest,
    tokens_text,
)
from bmoe.explorer.pages.view import NotFound, View, block_link
from bmoe.protocol.generation.records import CallRecord, ChunkRecords
from bmoe.protocol.generation.replay import chunk_records
from bmoe.storage import BlobStore

MAX_ROUTES = 2000  # (sequence, position) rows a chunk page lists


def _calls(view: View, records: ChunkRecords, manifest: Manifest) -> Html:
    rows = [[call.slot, *manifest.config.layer_expert(call.slot), int(call.inputs.shape[0]), view.who(call.primary),
             view.edges(tuple(call.replicas)), "yes" if call.checked else "no",
             tag("span", "disputed", class_="bad") if call.disputed else "no",
             "accepted" if call.fast == call.accepted else tag("span", "replaced: rolled back", class_="bad"),
             object_link(view, call.accepted)]
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
    parts: list[Cell] = ["accepted ", object_link(view, dispute["accepted"])]
    if committed is not None:
        parts += ["; it committed ", object_link(view, committed["outputs"])]
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
                     tokens_text(record.rows) or "–", _evidence(view, entry, record, calls)])
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
        manifest: Manifest | None = read_served_manifest(view, store)
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
