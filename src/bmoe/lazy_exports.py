"""A package's public names imported on first use, so importing the package costs only what it needs.

:func:`lazy_exports` gives a package the module-level ``__getattr__`` and ``__dir__`` (PEP 562) that import
a name from its home module the first time it is asked for, then keep it on the package. ``bmoe`` and
``bmoe.storage`` use it to keep torch out of a process that never computes (a ledger tool, a storage node).

Must not know: which names any package exports, or why they are costly.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose lazy names ``homes`` maps to their modules."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__
