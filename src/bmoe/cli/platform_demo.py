"""``bmoe demo --platform``: PolyLink's platform on bmoe (experiments/platform_demo.py), printed as three tables."""

from __future__ import annotations

import json
from pathlib import Path

from bmoe.cli.errors import fail
from bmoe.cli.run_checks import check_run_dir_free
from bmoe.console import console, results_table


def platform_demo(out: Path, seed: int, model: str | None, tokens: int, rtt_scale: float = 1.0) -> None:
    """Run the platform demo into ``out`` and print the fleet, the verification and the bill."""
    from bmoe.experiments.platform_demo import HOLDERS, run_platform_demo
    from bmoe.lm.pretrained.catalogue import pretrained_source

    if model is not None:
        pretrained_source(model)  # an unknown name is one line before anything is loaded
    if not 1 <= tokens <= 32:
        fail(f"--tokens must be in [1, 32] for the platform demo, got {tokens}")
    check_run_dir_free(out)
    if out.exists():
        fail(f"{out} already exists; remove it or pass --out to a new directory")
    out.mkdir(parents=True)
    demo = run_platform_demo(out, seed, model, tokens, rtt_scale)
    fleet = [{**row, "memory_mb": f"{row['memory_mb']:.1f}", "fetched_mb": f"{row['fetched_mb']:.1f}",
              "rtt_ms": f"{row['rtt_ms']:.0f}"} for row in demo.fleet_rows()]
    console.print(results_table(f"A heterogeneous fleet serving {demo.model_name} ({demo.whole / (1 << 20):.1f} MB "
                                f"of experts), each expert on {HOLDERS} devices",
                                fleet, [("device", "device"), ("memory_mb", "memory MB"), ("rtt_ms", "rtt ms"),
                                        ("slots", "slots"), ("fetched_mb", "fetched MB"),
                                        ("calls", "calls"), ("stake", "stake"), ("fate", "")]))
    summary = demo.summary()
    console.print(f"{summary['chunks']} chunks verified and sealed: {summary['calls']} expert calls, "
                  f"{summary['checked']} re-computed by another holder, {summary['disputes']} disputed "
                  f"(decided by the slot's holders), {summary['rollbacks']} rollbacks of tokens a lie had "
                  f"touched; placement epochs {summary['placement_epochs']}.", highlight=False)
    for entry in demo.served:
        if "refused" in entry:
            console.print(f"refused before generating, {entry['payer']}: {entry['refused']}", highlight=False)
    requests = [entry for entry in demo.served if "refused" not in entry]
    if any(entry.get("text") for entry in requests):
        for entry in requests:
            console.print(f"{entry['payer']}: {entry['prompt']} -> {entry['text']!r}", highlight=False)
    console.print(results_table("The bill (units; price per token moves with the batch's load)", demo.bill_rows(),
                                [("name", "participant"), ("role", "role"), ("deposited", "deposited"),
                                 ("paid", "paid"), ("earned", "earned"), ("balance", "balance")]))
    (out / "platform-demo.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    console.print(f"head {demo.head_hash}; chain, store and platform-demo.json in {out}; check it with: "
                  f"bmoe audit {out}; bmoe records {out}; bmoe explorer {out}", highlight=False)
