"""Genesis specs of pluggable rules (comparisons, assignment policies): one canonical encoding each.

A rule without parameters is recorded by its name alone, one with parameters as
``{"name": ..., "params": {...}}``; :func:`make_from_spec` reads either into the registered frozen
dataclass and refuses anything else in one line, including a non-canonical encoding of a known rule,
so one rule has one genesis encoding (and one head hash).

Must not know which rules exist: the registry and the error type are the caller's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar


class Spec(Protocol):
    def spec(self) -> str | dict[str, Any]: ...


SpecT = TypeVar("SpecT", bound=Spec)


def spec_of(rule: Any) -> str | dict[str, Any]:
    """The canonical encoding of a frozen dataclass ``rule`` with a ``name`` class variable."""
    params = {f.name: getattr(rule, f.name) for f in dataclasses.fields(rule)}
    return {"name": rule.name, "params": params} if params else rule.name


def make_from_spec(spec: object, registry: Mapping[str, type[SpecT]], what: str,
                   error: type[ValueError]) -> SpecT:
    """The registered rule ``spec`` encodes; ``error`` (one line, naming ``what``) otherwise."""
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping) and set(spec) == {"name", "params"} and isinstance(spec["params"], Mapping):
        name, params = spec["name"], dict(spec["params"])
    else:
        raise error(f"{what} must be a name or {{'name': ..., 'params': {{...}}}}, got {spec!r}")
    if not isinstance(name, str) or name not in registry:
        raise error(f"{what} must be one of {', '.join(registry)}, got {name!r}")
    try:
        rule = registry[name](**params)
    except error:
        raise
    except TypeError as err:
        raise error(f"{what} {name}: bad parameters {params!r} ({err})") from None
    if rule.spec() != spec:
        raise error(f"{what} {name}: record it as {rule.spec()!r}, not {spec!r}")
    return rule
