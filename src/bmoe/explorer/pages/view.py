"""What every page is rendered from: the audited index, its audit report, the source, and the layout.

Owns the page frame of a served build and the links every page shares (an edge, a task, a block),
and :class:`NotFound`, raised by a page for an unknown height, hash, task, edge or CID (the app
answers 404 with the message).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from bmoe.explorer.generation_index import ChunkEntry, generation_chunks
from bmoe.explorer.html import Cell, Html, link, page, path_part, short
from bmoe.explorer.index import ChainIndex
from bmoe.explorer.lm_index import MANIFEST_ERRORS, Manifest, read_manifest, slot_label
from bmoe.explorer.lm_source import LMClusterSource, LMRunSource
from bmoe.explorer.receipts import receipts_file
from bmoe.explorer.source import Source
from bmoe.ledger.audit import AuditReport
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.lm.config import LM_CONFIG_FILE as LM_FILE
from bmoe.run.run_dir import CONFIG_FILE


class NotFound(Exception):
    """The page asked for names nothing the ledger holds (one line, shown on the 404 page)."""


@dataclass(frozen=True)
class View:
    index: ChainIndex
    report: AuditReport
    source: Source
    is_cluster: bool

    def page(self, title: str, body: Cell, active: str = "", query: str = "", refresh_s: int | None = None) -> Html:
        return page(title, body, label=self.source.label, active=active, cluster=self.is_cluster, query=query,
                    refresh_s=refresh_s, lm=self.lm is not None, generations=self.generating)

    @property
    def lm(self) -> LMRunSource | LMClusterSource | None:
        """The language model's run directory or deployment, or None (a classifier's run or cluster)."""
        return self.source if isinstance(self.source, LMRunSource | LMClusterSource) else None

    @cached_property
    def generation_chunks(self) -> list[ChunkEntry]:
        """The chain's verified generation chunks (``generation_index``), in chain order."""
        return generation_chunks(self.index)

    @property
    def generating(self) -> bool:
        """A verified server's ledger: generation chunks on the chain, or its receipts.jsonl beside it."""
        path = receipts_file(self.source)
        return bool(self.index.state.generations) or (path is not None and path.is_file())

    @property
    def settings_file(self) -> str:
        return LM_FILE if self.lm is not None else CONFIG_FILE

    @cached_property
    def lm_manifest(self) -> tuple[Manifest | None, str]:
        """A language model's manifest, from the trusted object the chain's head names, or None and why: a
        classifier's run (no reason), or a trusted object that is not a language model's."""
        if self.lm is None:
            return None, ""
        try:
            with self.source.objects() as store:
                return read_manifest(store, self.index.state.gate_cid), ""
        except MANIFEST_ERRORS as err:
            return None, str(err)

    def manifest(self) -> Manifest | None:
        return self.lm_manifest[0]

    def expert_label(self, slot: int) -> str:
        """An expert as a page names it: its index, and for a language model its (layer, expert)."""
        manifest = self.manifest()
        return str(slot) if manifest is None else f"{slot} ({slot_label(manifest.config, slot)})"

    def config(self) -> RunConfig | None:
        """The run's settings, or None when its config file is absent or unreadable (the chain stands alone)."""
        try:
            return self.source.config()
        except ConfigError:
            return None

    def who(self, address: str) -> Html:
        """A participant by name: an edge links to its page."""
        name = self.index.name(address)
        if name.startswith("edge-"):
            return link(f"/edge/{name}", name, title=address)
        return link(f"/search?q={address}", name, title=address) if name == address[:12] else Html(name)

    def order(self, address: str) -> int:
        """Where an edge stands in the genesis (sorts edge-2 before edge-10); others after every edge."""
        edges = self.index.state.edges
        return edges.index(address) if address in edges else len(edges)

    def edges(self, addresses: tuple[str, ...]) -> Html:
        ranked = sorted(addresses, key=self.order)
        return Html(", ".join(self.who(address) for address in ranked)) if addresses else Html("–")


def block_link(height: int, block_hash: str | None = None) -> Html:
    return link(f"/block/{height}", f"#{height}", title=block_hash)


def hash_link(height: int, block_hash: str) -> Html:
    return link(f"/block/{block_hash}", short(block_hash, 16), title=f"block {height}: {block_hash}")


def task_link(task_id: str) -> Html:
    return link(f"/task/{path_part(task_id)}", task_id)
