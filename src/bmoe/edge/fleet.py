"""Fleet strings and numeric profile names, without torch: what a config needs to read ``--fleet``.

A fleet is ``PROFILE=COUNT,...`` (edges in order: the first COUNT edges get PROFILE, and so on);
:func:`parse_fleet` turns it into one profile name per edge or raises :class:`FleetError` naming
the problem. The profiles themselves (what an edge computes under) are in :mod:`bmoe.edge.profiles`,
which needs torch; this module asks torch only whether the GPU profile ``cuda`` exists, and only when
that name (or an unknown one) is given.

Must not know: what a profile does, the ledger, or how results are compared.
"""

from __future__ import annotations

DEFAULT = "default"
CPU_PROFILE_NAMES = (DEFAULT, "threads1", "threads2", "f64", "chunked", "nodnn", "mkl-compat", "mkl-avx2")
GPU_PROFILE = "cuda"  # known only on a machine with a GPU


class FleetError(ValueError):
    """A fleet or profile name is malformed or unknown; the message names it."""


def has_gpu() -> bool:
    """Whether torch sees a GPU (imports torch)."""
    import torch

    return bool(torch.cuda.is_available())


def profile_names() -> tuple[str, ...]:
    """Every profile this machine knows, in registry order (imports torch, to ask about the GPU)."""
    return CPU_PROFILE_NAMES + ((GPU_PROFILE,) if has_gpu() else ())


def check_profile_name(name: str) -> None:
    """Raise :class:`FleetError` unless ``name`` is a profile this machine knows."""
    if name in CPU_PROFILE_NAMES:
        return
    known = profile_names()
    if name not in known:
        hint = "; this machine has no GPU" if name == GPU_PROFILE else ""
        raise FleetError(f"unknown numeric profile {name!r} (known: {', '.join(known)}){hint}")


def parse_fleet(text: str, edges: int) -> tuple[str, ...]:
    """``PROFILE=COUNT,...`` as one profile name per edge, in edge order; ``""`` is all ``default``."""
    if text == "":
        return (DEFAULT,) * edges
    names: list[str] = []
    seen: set[str] = set()
    for entry in text.split(","):
        name, sep, count = (part.strip() for part in entry.partition("="))
        if not sep or not name:
            raise FleetError(f"fleet entry {entry!r} must look like PROFILE=COUNT")
        check_profile_name(name)
        if name in seen:
            raise FleetError(f"fleet names profile {name} twice")
        seen.add(name)
        if not count.isdecimal() or int(count) < 1:
            raise FleetError(f"fleet entry {entry!r}: COUNT must be a whole number >= 1")
        names += [name] * int(count)
    if len(names) != edges:
        raise FleetError(f"fleet counts sum to {len(names)}, but there are {edges} edges (M)")
    return tuple(names)


def is_default_fleet(text: str) -> bool:
    """Whether ``text`` describes a fleet where every edge has the ``default`` profile."""
    return all(entry.partition("=")[0].strip() == DEFAULT for entry in text.split(",")) if text else True
