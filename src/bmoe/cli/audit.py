"""``bmoe audit``: check a run directory's chain, or a deployment's chains against its storage nodes.

Owns the command line and the report: the flags (``--expect-head``, ``--ipfs-api``, ``--rpc-url``, ``--enrolled``,
``--cluster``), reading the enrolment file, and printing what was checked and what anchors it. The audit itself
is :mod:`bmoe.run.audit` (a run directory) and :mod:`bmoe.net.cluster.audit` (a cluster).
"""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.console import console
from bmoe.ledger.audit import AuditReport
from bmoe.net.cluster.audit import audit_cluster
from bmoe.net.enrolment import load_enrolment
from bmoe.net.errors import EnrolmentError
from bmoe.run.audit import AuditSetupError, audit_run_dir, evidence_summary, expected_heads, keys_line
from bmoe.verify.bound_window import bound_in_force


def _enrolment(path: Path) -> dict[str, str]:
    try:
        return load_enrolment(path)
    except EnrolmentError as exc:
        raise AuditSetupError(str(exc)) from None


def _print(report: AuditReport, where: Path) -> None:
    console.print(f"OK: {where}: {report.blocks} blocks (height {report.height}), head {report.head_hash}",
                  highlight=False, soft_wrap=True)
    evidence = evidence_summary(report)
    console.print(f"checked {report.transactions} transactions, {report.signatures} signatures, Merkle roots, "
                  f"seals ({report.seal_rules}), state roots by replay, "
                  f"{report.objects_checked} required objects, {evidence}", highlight=False, soft_wrap=True)
    if report.generation_chunks:
        console.print(f"verified generation: {report.generation_chunks} chunks, {report.generation_calls} expert "
                      "calls re-computed with the ledger's experts, each its accepted output", highlight=False,
                      soft_wrap=True)
    if report.state.quality_verdicts:  # each re-computed from its scores by the replay (ledger/quality.py)
        misjudged = ", ".join(f"{name} {count}" for name, count in sorted(report.state.misjudged.items())) or "none"
        console.print(f"quality verdicts (a heuristic): {sum(report.state.quality_verdicts.values())}, each median, "
                      f"flag and misjudging list re-computed from its scores; misjudging: {misjudged}",
                      highlight=False, soft_wrap=True)
    bound = bound_in_force(report.state.genesis or {})
    if bound is not None:
        console.print(f"bound in force: {bound}", highlight=False, soft_wrap=True)
    console.print(keys_line(report.state.genesis), highlight=False, soft_wrap=True)
    console.print("anchored to: " + "; ".join(report.anchored_to), highlight=False, soft_wrap=True)
    if report.unanchored:
        console.print("not anchored by: " + "; ".join(report.unanchored) + " (give --expect-head HASH to anchor it)",
                      highlight=False, soft_wrap=True)


@click.command("audit")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--cluster", type=click.Path(path_type=Path), default=None,
              help="audit the local deployment in this directory: every validator's chain, objects on its stores")
@click.option("--expect-head", "expect_head", multiple=True, metavar="HASH",
              help="a block hash the chain must contain, e.g. the head you recorded (repeatable)")
@click.option("--ipfs-api", default=None, metavar="URL",
              help="read RUN_DIR's objects from this IPFS node's kubo HTTP RPC [the run's store]")
@click.option("--rpc-url", default=None, metavar="URL",
              help="a chain sealed on Ethereum: read it from its contract on this node "
                   "[$BMOE_RPC_URL, else the run's]")
@click.option("--enrolled", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="a run of enrolled keys (a deployment's validator): the enrolment whose public keys its "
                   "genesis must hold [a cluster's own]")
def audit_command(run_dir: Path | None, cluster: Path | None, expect_head: tuple[str, ...],
                  ipfs_api: str | None, rpc_url: str | None, enrolled: Path | None) -> None:
    """Replay the chain from its genesis and check every hash, signature, seal, state root and object."""
    if (run_dir is None) == (cluster is None):
        raise AuditSetupError("give a RUN_DIR or --cluster DIR (one of them)")
    if cluster is not None and (ipfs_api is not None or rpc_url is not None or enrolled is not None):
        raise AuditSetupError("--ipfs-api, --rpc-url and --enrolled are a RUN_DIR's; a cluster's come from its "
                              "cluster.json")
    heads = expected_heads(expect_head)
    if cluster is not None:
        for path, report in audit_cluster(cluster, heads):
            _print(report, path)
        return
    assert run_dir is not None
    members = _enrolment(enrolled) if enrolled is not None else None
    _print(audit_run_dir(run_dir, heads, ipfs_api, rpc_url, members, str(enrolled)), run_dir)
