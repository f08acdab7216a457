"""The chain: the front page (head, audit, latest blocks), every block, one block with its transactions."""

from __future__ import annotations

import dataclasses

from bmoe.explorer.html import Html, join, link, pairs, section, short, table, tag
from bmoe.explorer.model import BlockView
from bmoe.explorer.pages.generations import chunk_href
from bmoe.explorer.pages.view import NotFound, View, block_link, hash_link, task_link
from bmoe.ledger.transactions import Transaction, tx_hash

LATEST = 20
PER_PAGE = 100


def _block_row(view: View, block: BlockView) -> list[Html | str | int]:
    return [block_link(block.height, block.hash), hash_link(block.height, block.hash),
            view.who(block.header.proposer), block.header.consensus, len(block.transactions),
            join((task_link(task_id) for task_id in block.task_ids), ", ") or "–", block.size]


BLOCK_HEADERS = ("height", "hash", "proposer", "seal", "transactions", "tasks", "bytes")


def audit_line(view: View) -> Html:
    report = view.report
    return tag("p", tag("span", "audit OK", class_="ok"),
               f": {report.blocks} blocks, {report.transactions} transactions and {report.signatures} signatures "
               f"checked, seals ({report.seal_rules}), state roots by replay, {report.objects_checked} objects "
               "against their CIDs. ", link("/run#audit", "details"), id="audit-status")


def quorum_line(view: View) -> Html:
    """Loud when the run's tasks keep failing to reach quorum (its ``stall_after``), quiet otherwise."""
    config = view.config()
    watch = view.index.quorum
    if config is not None:
        watch = dataclasses.replace(watch, stall_after=config.stall_after)
    if watch.stalled:
        return tag("p", tag("span", "quorum stalled", class_="bad"), watch.message().removeprefix("quorum stalled"),
                   id="quorum-status")
    if not watch.total:
        return tag("p", "quorum: every task reached quorum", id="quorum-status")
    last = f" (last: {watch.last.describe()})" if watch.last is not None else ""
    return tag("p", f"quorum: {watch.total} tasks without quorum{last}, {watch.streak} in a row at the head; "
                    f"nobody is accused for them", id="quorum-status")


def _model(view: View) -> list[tuple[str, Html | str]]:
    """A language model's shape in a line (its experts are the ledger's slots, L x N), linked to its manifest."""
    manifest = view.manifest()
    if manifest is None:
        return []
    c = manifest.config
    return [("language model", link("/run", f"{c.num_hidden_layers} layers × {c.num_local_experts} experts, "
                                            f"top-{c.num_experts_per_tok}, d {c.hidden_size}, context "
                                            f"{c.max_position_embeddings}, vocabulary {c.vocab_size}"))]


def _generations(view: View) -> list[tuple[str, Html | str]]:
    """A verified server's ledger: its generation sessions, chunks and tokens in a line, linked to their page."""
    if not view.generating:
        return []
    state = view.index.state
    return [("generations", link("/generations", f"{len(state.generations)} sessions, "
                                                 f"{sum(state.generations.values())} chunks sealed, "
                                                 f"{state.generated_tokens} tokens"))]


def home(view: View) -> Html:
    index = view.index
    head = index.head
    summary = pairs([("head", hash_link(head.height, head.hash)), ("height", head.height),
                     ("tasks", f"{index.state.task_count} ({index.state.train_tasks} training)"),
                     ("framework", index.genesis["framework"]),
                     ("experts N, top-K, edges M",
                      f"{index.genesis['num_experts']}, {index.genesis['top_k']}, {len(index.state.edges)}"),
                     *_model(view), *_generations(view)], id_="head")
    latest = [_block_row(view, block) for block in reversed(index.blocks[-LATEST:])]
    body = join([audit_line(view), quorum_line(view), summary,
                 section(f"Latest blocks ({len(latest)} of {len(index.blocks)})",
                         table(BLOCK_HEADERS, latest, id_="blocks"), link("/blocks", "all blocks"))])
    return view.page("Chain", body, active="/")


def blocks(view: View, page_number: int) -> Html:
    newest_first = list(reversed(view.index.blocks))
    pages = max(1, -(-len(newest_first) // PER_PAGE))
    if not 1 <= page_number <= pages:
        raise NotFound(f"there is no page {page_number} of blocks (pages 1 to {pages})")
    rows = [_block_row(view, block) for block in newest_first[(page_number - 1) * PER_PAGE:page_number * PER_PAGE]]
    turn = join(link(f"/blocks?page={n}", n) if n != page_number else Html(f"<b>{n}</b>") for n in range(1, pages + 1))
    return view.page(f"Blocks (page {page_number} of {pages})", join([table(BLOCK_HEADERS, rows, id_="blocks"),
                                                                    tag("p", "pages: ", turn)]), active="/")


def _summary(view: View, tx: Transaction) -> Html:
    """What a transaction says, in a few words, with its task and objects linked."""
    payload = tx.payload
    parts: list[Html | str] = [task_link(payload["task_id"])] if "task_id" in payload else []
    if tx.kind == "genesis":
        parts.append(f"{payload['framework']}: {payload['num_experts']} experts, top-{payload['top_k']}, "
                     f"{len(payload['edges'])} edges, {len(payload['validators'])} validator(s)")
    elif tx.kind == "task":
        parts.append(f"{payload['kind']} round {payload['round']}, {payload['samples']} samples")
    elif tx.kind == "activation":
        parts.append(f"counts {payload['counts']}")
    elif tx.kind in ("commitment", "expert_update"):
        entries = payload["results" if tx.kind == "commitment" else "updates"]
        parts.append(f"experts {[entry['expert'] for entry in entries]}")
    elif tx.kind in ("acceptance", "update_acceptance"):
        parts.append(", ".join(f"{d['expert']}: {d['status']}" for d in payload["decisions"]))
    elif tx.kind == "misbehaviour":
        parts += [Html(f"{payload['phase']}: "), view.who(payload["edge"]),
                  ", ".join(f" expert {r['expert']} {r['reason']}" for r in payload["records"])]
    elif tx.kind == "dispute":
        parts.append(f"{payload['phase']}: experts {[d['expert'] for d in payload['disputes']]} escalated")
    elif tx.kind == "gate_update":
        parts.append(f"loss {payload['loss']:.4f}")
    elif tx.kind == "generation_chunk":
        parts += [link(chunk_href(payload["generation"], payload["chunk"]),
                       f"{payload['generation']} chunk {payload['chunk']}"),
                  f": {payload['tokens']} tokens, {payload['calls']} calls ({payload['checked']} checked), "
                  f"{len(payload['disputes'])} disputed, {len(payload['records_against'])} records against edges"]
    elif tx.kind == "quality_verdict":  # ledger/quality.py: a heuristic's verdict, micro-units
        verdict, median = payload["verdict"], payload["verdict"]["median"]
        parts.append(f"quality (heuristic) of {payload['response']}: median "
                     f"{'none' if median is None else f'{median / 1e6:.3f}'}, {verdict['flag']}"
                     f"{', judge model ' + verdict['judge']['answer'] if verdict['judge'] else ''}, "
                     f"misjudging {verdict['misjudging'] or 'none'}")
    return join(parts, " ")


def block(view: View, ref: str) -> Html:
    found = view.index.block(ref)
    if found is None:
        raise NotFound(f"no block at height or with hash {ref!r} (head: height {view.index.head.height})")
    header = found.header
    neighbours = join([block_link(found.height - 1) if found.height else "", " ",
                       block_link(found.height + 1) if found.height < view.index.head.height else ""])
    seal = f"{header.consensus}, difficulty {header.difficulty} bits, nonce {header.nonce}"
    if found.certificate is not None:
        seal += f"; certificate: {', '.join(sorted(found.certificate))}"
    facts = pairs([("hash", tag("span", found.hash, class_="mono", id="block-hash")),
                   ("height", found.height),
                   ("previous", link(f"/block/{header.prev_hash}", short(header.prev_hash, 16))
                    if found.height else "genesis"),
                   ("proposer", view.who(header.proposer)), ("seal", seal),
                   ("Merkle root", short(header.merkle_root, 16)), ("state root", short(header.state_root, 16)),
                   ("timestamp (logical)", header.timestamp), ("size", f"{found.size} bytes"),
                   ("tasks", join((task_link(task_id) for task_id in found.task_ids), ", ") or "–"),
                   ("neighbours", neighbours)], id_="header")
    rows = [[position, tx.kind, view.who(tx.sender), tx.nonce, short(tx_hash(tx), 16), _summary(view, tx)]
            for position, tx in enumerate(found.transactions)]
    body = join([facts, section(f"Transactions ({len(rows)})",
                                table(("#", "kind", "sender", "nonce", "hash", "what"), rows, id_="transactions"))])
    return view.page(f"Block {found.height}", body, active="/")


def page_number(text: str | None) -> int:
    """``?page=`` as a number (1 when absent); NotFound for anything else."""
    if text is None:
        return 1
    if not text.isdecimal():
        raise NotFound(f"page {text!r} is not a page number")
    return int(text)
