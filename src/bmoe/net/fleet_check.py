"""Refusing a deployment whose honest edges cannot agree bit for bit under the comparison in force.

Owns one rule, applied by ``bmoe cluster up`` to the whole fleet (before anything is written) and by
the validator process to each edge started by hand that declares its numerics (:func:`misdeclared`:
that edge alone is excluded, the fleet goes on): under a comparison that needs equal bytes
(``exact``; ``integer`` unless the expert preset computes in integers), honest edges whose numeric
profiles compute differently split every decision, and the ledger would record the split silently
as their misbehaviour. The in-process round raises ``HonestDisagreement`` then; a deployment refuses
to start instead, naming the profiles and the way out (``--comparison tolerance``).

Two profiles compute alike when their effective settings are equal (:func:`numerics_of`): ``default``
under ``--threads 1`` is ``threads1``. Different hardware under one profile is not seen here.

Must not know: HTTP, processes or the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping

from bmoe.edge.profiles import NumericProfile, get_profile
from bmoe.moe.presets import INTEGER_PRESETS
from bmoe.run.config import RunConfig
from bmoe.run.setup import behaviours
from bmoe.verify.comparison import make_comparison
from bmoe.verify.framework import framework_of


class MixedFleet(ValueError):
    """Honest edges with different numerics under a comparison that needs equal bytes (one line)."""


def numerics_of(profile: NumericProfile, threads: int) -> str:
    """What decides an edge's float bytes under ``profile`` in a process run with ``--threads threads``."""
    env = " ".join(f"{key}={value}" for key, value in profile.env)
    return (f"threads={profile.threads or threads} onednn={'on' if profile.onednn else 'off'} "
            f"{'float64' if profile.float64 else 'float32'} rows={profile.chunk_rows or 'all'} "
            f"{profile.device}{' ' + env if env else ''}")


def needs_equal_bytes(config: RunConfig) -> bool:
    """Whether honest edges must return identical bytes for the comparison in force to accept them."""
    if not framework_of(config.framework).verifies:  # one host per expert: nothing is compared
        return False
    if make_comparison(config.comparison_spec()).records_groups:  # tolerance: groups within a bound
        return False
    return not (config.comparison == "integer" and config.expert in INTEGER_PRESETS)  # identical everywhere


def check_declared(config: RunConfig, declared: Mapping[str, tuple[str, str]]) -> None:
    """Refuse ``declared`` (edge name -> (profile name, numerics)) if they differ where bytes must be equal."""
    if not needs_equal_bytes(config) or len({numerics for _, numerics in declared.values()}) <= 1:
        return
    counts: dict[str, int] = {}
    for profile, _ in declared.values():
        counts[profile] = counts.get(profile, 0) + 1
    listing = ",".join(f"{profile}={count}" for profile, count in counts.items())
    raise MixedFleet(f"honest edges run numeric profiles that compute differently ({listing}) and comparison "
                     f"{config.comparison} needs equal bytes from them, so the ledger would record every split as "
                     f"their misbehaviour: use --comparison tolerance (its bound calibrated with `bmoe calibrate "
                     f"--fleet {listing}`, then --bound-from), or one profile on every edge")


def check_fleet(config: RunConfig) -> None:
    """Refuse ``config`` if its honest edges' profiles compute differently where bytes must be equal."""
    declared = {}
    for index, (name, behaviour) in enumerate(zip(config.edge_profiles, behaviours(config), strict=True)):
        if not behaviour.malicious:
            declared[f"edge-{index}"] = (name, numerics_of(get_profile(name), config.threads))
    check_declared(config, declared)


def misdeclared(config: RunConfig, index: int, profile: str, numerics: str) -> str | None:
    """Why edge ``index``'s declaration (``profile``, ``numerics``) cannot take part under ``config``, or None.

    A declaration concerns only the edge that made it: under a comparison that needs equal bytes, an honest
    edge must compute as the run configures it (``config.edge_profiles[index]``, which ``cluster up`` checked
    with :func:`check_fleet`); one that does not would split every decision, so it is left out, not the fleet."""
    if not needs_equal_bytes(config) or not 0 <= index < len(config.edge_profiles):
        return None
    if behaviours(config)[index].malicious:  # an attacker's bytes differ anyway
        return None
    configured = config.edge_profiles[index]
    expected = numerics_of(get_profile(configured), config.threads)
    if numerics == expected:
        return None
    return (f"declares profile {profile} ({numerics}) but the run configures {configured} ({expected}) and "
            f"comparison {config.comparison} needs equal bytes: restart it with --profile {configured}")
