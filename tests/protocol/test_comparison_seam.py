"""The ``Comparison`` seam on the protocol's side (``protocol/comparisons/``): every comparison has its tensor
checks, the same recomputed output is judged by bytes under ``exact`` and within the bound under ``tolerance``,
and no module of ``protocol/`` outside the comparisons' own files asks which comparison is in force."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from bmoe.moe.payloads import encode_gradient, encode_result
from bmoe.protocol.comparisons import TENSOR_CHECKS, tensor_checks
from bmoe.protocol.comparisons.checks import Differs
from bmoe.protocol.gate_step import GateUpdate
from bmoe.storage import MemoryStore, serialize_tensors
from bmoe.verify.comparison import COMPARISONS, EXACT, Comparison, ComparisonError, Exact, Integer, Tolerance

PROTOCOL = Path(__file__).resolve().parents[2] / "src" / "bmoe" / "protocol"
VARIANTS = PROTOCOL / "comparisons"  # the one place that may name a comparison class


def test_every_registered_comparison_has_tensor_checks_of_its_own_parameters() -> None:
    assert set(TENSOR_CHECKS) == set(COMPARISONS)
    for name, kind in COMPARISONS.items():
        comparison = kind()
        assert tensor_checks(comparison).comparison is comparison, name


def test_a_comparison_without_tensor_checks_is_refused_in_one_line() -> None:
    class Unregistered(Exact):
        name = "unregistered"

    with pytest.raises(ComparisonError, match=r"^comparison unregistered: no tensor checks registered$"):
        tensor_checks(Unregistered())


@pytest.mark.parametrize("comparison", [EXACT, Integer()], ids=["exact", "integer"])
def test_a_last_bit_difference_in_the_output_differs_under_equal_bytes(comparison: Comparison) -> None:
    recorded, recomputed = _last_bit_apart()
    store = MemoryStore()
    with pytest.raises(Differs, match=r"^output_cid differs from the re-executed value"):
        tensor_checks(comparison).check_output(store, store.put(encode_result(recorded)), recomputed)
    tensor_checks(comparison).check_output(store, store.put(encode_result(recomputed)), recomputed)


def test_a_last_bit_difference_in_the_output_is_within_the_tolerance_but_a_large_one_is_not() -> None:
    recorded, recomputed = _last_bit_apart()
    store = MemoryStore()
    checks = tensor_checks(Tolerance())
    checks.check_output(store, store.put(encode_result(recorded)), recomputed)
    with pytest.raises(Differs, match=r"^the recorded MoE output is .* from the re-executed value, beyond the bound$"):
        checks.check_output(store, store.put(encode_result(recorded * 1.01)), recomputed)


def test_a_gate_update_with_the_gradients_of_other_experts_differs_under_every_comparison() -> None:
    store = MemoryStore()
    gate, grad = serialize_tensors({"weight": torch.zeros(3, 4)}), torch.ones(2, 5)  # grad: (n_e, C)
    update = GateUpdate(0.5, gate, {1: (encode_gradient(grad), grad)})
    payload = {"loss": 0.5, "gate_cid": store.put(gate), "gradient_cids": {"2": store.put(encode_gradient(grad))}}
    with pytest.raises(Differs, match=r"^gradient_cids: not the accepted experts$"):
        tensor_checks(Tolerance()).check_gate_update(store, update, payload)
    with pytest.raises(Differs, match=r"^gradient_cids differs from the re-executed value"):
        tensor_checks(EXACT).check_gate_update(store, update, payload)


def _last_bit_apart() -> tuple[torch.Tensor, torch.Tensor]:
    recorded = torch.linspace(-2.0, 3.0, 40, dtype=torch.float32).reshape(8, 5)  # (S, C)
    return recorded, torch.nextafter(recorded, torch.full_like(recorded, 10.0))


def _asks_which_comparison(tree: ast.AST) -> list[str]:
    """Imports of (or attributes naming) a comparison class and tests of a comparison's name, with their line
    numbers: without a class, no ``isinstance`` on it."""
    classes = {kind.__name__ for kind in COMPARISONS.values()}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "bmoe.verify.comparison":
            found += [f"line {node.lineno}: imports {a.name}" for a in node.names if a.name in classes]
        if isinstance(node, ast.Attribute) and node.attr in classes:
            found.append(f"line {node.lineno}: names {node.attr}")
        if isinstance(node, ast.Compare):
            constants = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
            if any(value in COMPARISONS for value in constants):
                found.append(f"line {node.lineno}: compares with a comparison's name")
    return found


def test_no_protocol_module_outside_the_comparisons_asks_which_comparison_is_in_force() -> None:
    asking = {str(path.relative_to(PROTOCOL)): found for path in sorted(PROTOCOL.rglob("*.py"))
              if VARIANTS not in path.parents and (found := _asks_which_comparison(ast.parse(path.read_text())))}
    assert asking == {}


def test_the_guard_sees_a_module_that_asks() -> None:
    source = ("from bmoe.verify.comparison import Comparison, Tolerance\n"
              "import bmoe.verify.comparison as seam\n"
              "def f(c: Comparison) -> bool:\n    return c.name == 'tolerance' or isinstance(c, seam.Exact)\n")
    assert sorted(_asks_which_comparison(ast.parse(source))) == [
        "line 1: imports Tolerance", "line 4: compares with a comparison's name", "line 4: names Exact"]
