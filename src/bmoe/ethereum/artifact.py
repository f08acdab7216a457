"""The contract as the client ships it: ``BmoeLedger.json`` (ABI, deploy and runtime bytecode).

Owns reading the committed artifact and making it from the source. The runtime never compiles:
``contracts/BmoeLedger.vy`` is compiled by ``tools/build_contract.py`` with the vyper the ``dev`` extra
pins, and a test recompiles it and checks the result equals the committed artifact byte for byte.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bmoe.storage.digest import sha256_hex

ARTIFACT_PATH = Path(__file__).with_name("BmoeLedger.json")
SOURCE_PATH = Path(__file__).resolve().parents[3] / "contracts" / "BmoeLedger.vy"  # in a checkout
PAYMENTS_ARTIFACT_PATH = Path(__file__).with_name("BmoePayments.json")  # the payments contract (ethereum/payments.py)
PAYMENTS_SOURCE_PATH = SOURCE_PATH.with_name("BmoePayments.vy")
_VERSION = re.compile(r'^VERSION: public\(constant\(String\[\d+\]\)\) = "([^"]+)"$', re.MULTILINE)


@dataclass(frozen=True)
class Artifact:
    """The compiled contract: what a deploy sends and what a bmoe contract's code must be."""

    abi: list[dict[str, Any]]
    bytecode: bytes  # deploy code (constructor arguments are appended)
    runtime: bytes  # the code a deployed bmoe contract holds
    version: str  # the contract's VERSION constant
    compiler: str


@functools.cache
def load_artifact() -> Artifact:
    """The committed artifact."""
    return read_artifact(ARTIFACT_PATH)


@functools.cache
def load_payments_artifact() -> Artifact:
    """The committed artifact of the payments contract."""
    return read_artifact(PAYMENTS_ARTIFACT_PATH)


def read_artifact(path: Path) -> Artifact:
    body = json.loads(path.read_text(encoding="utf-8"))
    return Artifact(body["abi"], bytes.fromhex(body["bytecode"][2:]), bytes.fromhex(body["bytecode_runtime"][2:]),
                    body["version"], body["compiler"])


def compile_artifact(source_path: Path = SOURCE_PATH) -> dict[str, Any]:
    """The artifact's JSON body compiled from ``source_path`` by the installed vyper (the ``dev`` extra)."""
    import vyper  # only a build or a test compiles
    from vyper.compiler import compile_code

    source = source_path.read_text(encoding="utf-8")
    found = _VERSION.search(source)
    if found is None:
        raise ValueError(f"{source_path} declares no VERSION constant")
    out = compile_code(source, output_formats=["abi", "bytecode", "bytecode_runtime"])
    return {"contract": source_path.stem, "version": found.group(1), "compiler": f"vyper {vyper.__version__}",
            "source_sha256": sha256_hex(source.encode("utf-8")), "abi": out["abi"],
            "bytecode": out["bytecode"], "bytecode_runtime": out["bytecode_runtime"]}


def artifact_text(body: dict[str, Any]) -> str:
    """The committed file's exact text for ``body``."""
    return json.dumps(body, indent=1, sort_keys=True) + "\n"
