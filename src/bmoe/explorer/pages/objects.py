"""Objects by CID: what the ledger says of one (every transaction naming it), and its bytes, verified.

Only objects the chain names are served: the explorer shows the ledger, not whatever a store holds.
Bytes come through the store's ``get``, which checks them against the CID before returning them.
"""

from __future__ import annotations

from bmoe.explorer.html import Html, join, link, pairs, path_part, section, table, tag
from bmoe.explorer.model import Mention
from bmoe.explorer.pages.view import NotFound, View, block_link, task_link
from bmoe.storage import BlobStore, StorageError


def mentions(view: View, cid: str) -> list[Mention]:
    found = view.index.mentions.get(cid)
    if not found:
        raise NotFound(f"the chain names no object {cid!r}")
    return found


def object_page(view: View, cid: str, store: BlobStore) -> Html:
    named = mentions(view, cid)
    try:
        held = store.has(cid)
        state = (f"in the store, {store.size(cid)} bytes; the download is checked against the CID"
                 if held else "not in the store (a commitment nobody accused: audit counts it as absent)")
    except StorageError as err:
        held, state = False, f"the store cannot say: {err}"
    rows = [[block_link(m.height), m.tx_index, m.kind, view.who(m.sender), m.name,
             task_link(m.task_id) if m.task_id else "–", "required" if m.required else "checked when present"]
            for m in named]
    download = link(f"/object/{path_part(cid)}/bytes", "download the bytes") if held else Html("")
    body = join([pairs([("CID", tag("span", cid, class_="mono", id="cid")), ("store", state), ("bytes", download)]),
                 section(f"Named by the ledger ({len(rows)} times)",
                         table(("block", "transaction", "kind", "sender", "field", "task", "audit"), rows,
                               id_="mentions"))])
    return view.page("Object", body)


def object_bytes(view: View, cid: str, store: BlobStore) -> bytes:
    """The object's bytes, verified against ``cid`` by the store (StorageError when missing or corrupt)."""
    mentions(view, cid)
    return store.get(cid)
