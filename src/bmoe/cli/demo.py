"""``bmoe demo``: B-MoE against the traditional framework under the paper's attack (experiments/demo.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bmoe.cli.comparison_options import comparison_options, comparison_settings
from bmoe.cli.errors import fail
from bmoe.cli.finite import FiniteFloatRange
from bmoe.cli.run_checks import (
    check_in_process,
    check_run_dir_free,
    checked_config,
)
from bmoe.console import console, results_table, round_progress
from bmoe.verify.framework import framework_of

PLATFORM_FLAGS = ("--model", "--tokens", "--rtt-scale")


def given_flags(ctx: click.Context) -> set[str]:
    """The flags given on the command line (not left at their defaults), as ``--name``."""
    return {f"--{name.replace('_', '-')}" for name in ctx.params
            if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE}


@click.command()
@click.option("--rounds", type=int, default=150, show_default=True, help="training rounds per run")
@click.option("--malicious-ratio", type=float, default=0.3, show_default=True,
              help="share of malicious edges under attack")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="where the four run directories go [default: runs/demo; runs/platform with --platform]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fleet", default=None, help="edges' numeric profiles PROFILE=COUNT,... in edge order "
              "[default: threads1=3,f64=3,chunked=2,threads2=2, a mixed fleet]")
@comparison_options
@click.option("--platform", is_flag=True, help="instead: PolyLink's platform (docs/platform.md): a heterogeneous "
              "fleet serving a language model across devices, a lying device caught and slashed, and the bill")
@click.option("--model", default=None, help="[--platform] a pretrained model by name (smollm2-135m, fetched once) "
              "[default: a seeded random-weight MoE, nothing to download]")
@click.option("--tokens", type=int, default=12, show_default=True, help="[--platform] tokens per request")
@click.option("--rtt-scale", type=FiniteFloatRange(0.0, 100.0), default=1.0, show_default=True,
              help="[--platform] scale every device's emulated network round trip (0: all on loopback, no wait)")
def demo(rounds: int, malicious_ratio: float, out: Path | None, seed: int, fleet: str | None, comparison: str | None,
         bound: float | None, update_bound: float | None, bound_from: Path | None, force_bound: bool,
         platform: bool, model: str | None, tokens: int, rtt_scale: float) -> None:
    """B-MoE vs the traditional framework, without and with colluding Gaussian attackers (digits data,
    a mixed fleet, tolerance comparison)."""
    given = given_flags(click.get_current_context())
    if platform:
        classifier = sorted(given - {"--platform", "--out", "--seed", *PLATFORM_FLAGS})
        if classifier:
            fail(f"{classifier[0]} applies to the classifier demo, not to --platform")
        from bmoe.cli.platform_demo import platform_demo

        platform_demo(out or Path("runs/platform"), seed, model, tokens, rtt_scale)
        return
    platform_only = sorted(given & set(PLATFORM_FLAGS))
    if platform_only:
        fail(f"{platform_only[0]} applies to --platform")
    out = out or Path("runs/demo")
    from bmoe.experiments.demo import DEMO_DEFAULTS, run_demo

    settings = comparison_settings(comparison, bound, update_bound, bound_from, force_bound,
                                   default=DEMO_DEFAULTS.comparison)
    base = checked_config(**{**DEMO_DEFAULTS.to_dict(), "rounds": rounds, "seed": seed,
                      "fleet": DEMO_DEFAULTS.fleet if fleet is None else fleet, **settings})
    check_in_process(base)
    if not 0 < malicious_ratio < 1:
        fail(f"--malicious-ratio must be in (0, 1) for the demo, got {malicious_ratio}")
    check_run_dir_free(out)
    if out.exists():
        fail(f"{out} already exists; remove it or pass --out to a new directory")
    with round_progress() as track:
        rows = run_demo(base, malicious_ratio, out, track)
    by_name = {row["name"]: row for row in rows}
    attacked = f"r{malicious_ratio:.1f}"
    share = f"{malicious_ratio:.0%}"
    served = [{"framework": framework, "clean": by_name[f"{framework}-r0.0"]["test_accuracy"],
               "persistent": by_name[f"{framework}-r0.0"]["served_persistent"],
               "transient": by_name[f"{framework}-r0.0"]["served_transient"]} for framework in ("bmoe", "traditional")]
    console.print(results_table(f"Trained clean, served among {share} attackers", served,
                                [("framework", "framework"), ("clean", "no attack"),
                                 ("persistent", "noise kept"), ("transient", "fresh noise")]))
    b_served, t_served = served
    console.print(f"Attackers strike with the paper's probability 0.2 per round. Under the paper's reading (an edge "
                  f"keeps the noise it injects), B-MoE serves "
                  f"{b_served['persistent']:.4f}, as without attack; the traditional framework falls to "
                  f"{t_served['persistent']:.4f} ({t_served['persistent'] / t_served['clean'] - 1:+.0%}). With "
                  f"fresh noise per strike instead, traditional serves {t_served['transient']:.4f}.",
                  highlight=False)
    trained = [{"framework": framework, "clean": by_name[f"{framework}-r0.0"]["test_accuracy"],
                "attacked": by_name[f"{framework}-{attacked}"]["test_accuracy"],
                "records": by_name[f"{framework}-{attacked}"]["misbehaviour_records"]
                if framework_of(framework).verifies else None}
               for framework in ("bmoe", "traditional")]
    console.print(results_table(f"Trained among {share} colluding attackers", trained,
                                [("framework", "framework"), ("clean", "no attack"), ("attacked", "attacked"),
                                 ("records", "misbehaviour")]))
    console.print("Test accuracy. Trained among attackers, the traditional gate routes around the attacked experts "
                  "(the paper's Fig. 2), so on this small dataset training among them costs it little or nothing "
                  "(docs/results.md); B-MoE records every manipulated result and accepts what a clean run "
                  "accepts.", highlight=False)
    console.print(f"digits, N=10, K=3, M=10, fleet {base.fleet or 'default'}, comparison {base.comparison}; "
                  f"run directories, head hashes and demo.json in {out}; check a chain with: "
                  f"bmoe audit {out}/bmoe-{attacked}", highlight=False)
    (out / "demo.json").write_text(json.dumps(rows, indent=2) + "\n")
