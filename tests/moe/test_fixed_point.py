"""The integer expert (``mlp-int``) computes the same bytes everywhere, and still learns.

Bytes: forward results and SGD updates are identical under every in-process numeric profile, at 1
and 2 threads, for float32 and float64 inputs and when rows are computed one at a time; the fast
exact matmul equals torch's int64 matmul. Learning: the integer step follows the float gradient and
lowers the loss on scikit-learn's digits. Ranges: inputs, outputs and weights saturate where the
module's docstring says, and a learning rate outside the stated range is refused.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from bmoe.data import load_digits_dataset
from bmoe.edge.profiles import PROFILES, get_profile
from bmoe.moe.experts import INTEGER_PRESETS, PRESETS, ExpertSpec, MLPExpert, build_expert
from bmoe.moe.fixed_point import (
    OUT_FRAC,
    IntegerMLPExpert,
    Weights,
    exact_matmul,
    quantize_lr,
    round_shift,
    sgd_step,
)
from bmoe.moe.payloads import encode_result
from bmoe.storage import serialize_tensors

FASHION = ExpertSpec("mlp-int", (1, 28, 28), 10)  # the paper's shape: 784 -> 256 -> 10
IN_PROCESS = [name for name, profile in PROFILES.items() if profile.in_process]


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def expert(spec: ExpertSpec = FASHION, seed: int = 0) -> IntegerMLPExpert:
    torch.manual_seed(seed)
    module = build_expert(spec)
    assert isinstance(module, IntegerMLPExpert)
    return module


def sample(rows: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs like standardised images (n, 1, 28, 28) and a cross-entropy-sized output gradient (n, 10)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 1, 28, 28, generator=generator)
    grad = (torch.softmax(torch.randn(rows, 10, generator=generator), 1) - 0.1) / rows
    return x, grad


def as_bytes(weights: Weights) -> bytes:
    return serialize_tensors(weights)


def under(profile_name: str, weights: Weights, x: torch.Tensor, grad: torch.Tensor) -> tuple[bytes, bytes]:
    """(result bytes, updated-weights bytes) computed the way an edge with this profile computes."""
    profile = get_profile(profile_name)
    module = IntegerMLPExpert(MLPExpert(784, 10))
    module.load_state_dict(weights)
    module = profile.prepare(module)
    with profile.computing():
        output = profile.forward(module, x)  # (n, 10) float32
        new = module.integer_update(x, grad, lr=0.1)
    return encode_result(output), as_bytes(new)


def test_forward_and_update_bytes_are_identical_under_every_in_process_profile() -> None:
    weights = expert().weights()
    x, grad = sample(100)  # more rows than the chunked profile's 16: it splits the batch
    assert {"default", "threads1", "threads2", "f64", "chunked", "nodnn"} <= set(IN_PROCESS)
    baseline = under("default", weights, x, grad)
    for name in IN_PROCESS:
        assert under(name, weights, x, grad) == baseline, name


def test_one_and_two_threads_in_the_same_process_give_the_same_bytes() -> None:
    module = expert()
    x, grad = sample(600)  # big enough for a two-thread GEMM to split its work
    answers = []
    for threads in (1, 2, 1):
        torch.set_num_threads(threads)
        answers.append((encode_result(module(x)), as_bytes(module.integer_update(x, grad, 0.1))))
    assert answers[0] == answers[1] == answers[2]


def test_rows_computed_one_at_a_time_give_the_batch_s_bytes() -> None:
    module = expert()
    x, _ = sample(40)
    rows = torch.cat([module(x[i:i + 1]) for i in range(40)])
    assert encode_result(rows) == encode_result(module(x))


def test_float64_copies_of_the_inputs_give_the_same_bytes() -> None:
    module = expert()
    x, grad = sample(50)
    assert torch.equal(module(x), module(x.double()))
    update = module.integer_update(x, grad, 0.1)
    assert as_bytes(update) == as_bytes(module.integer_update(x.double(), grad.double(), 0.1))


def test_the_exact_matmul_equals_torch_s_int64_matmul_even_when_it_splits_the_sum() -> None:
    generator = torch.Generator().manual_seed(2)
    for low_bits, k in ((20, 784), (26, 300)):  # one float64 block; blocks of 2 (52-bit products)
        a = torch.randint(-(2**low_bits), 2**low_bits, (17, k), generator=generator)
        b = torch.randint(-(2**low_bits), 2**low_bits, (k, 9), generator=generator)
        assert torch.equal(exact_matmul(a, b), a @ b)
    big = torch.tensor([[2**26 - 1] * 3])  # three 52-bit products: an odd sum above 2**53, not a float64
    assert int(exact_matmul(big, big.T)) == 3 * (2**26 - 1) ** 2
    assert int(big.double() @ big.T.double()) != 3 * (2**26 - 1) ** 2  # one float64 dot must round
    with pytest.raises(OverflowError):
        exact_matmul(torch.full((1, 4), 2**40), torch.full((4, 1), 2**40))


def test_the_integer_step_follows_the_float_gradient() -> None:
    data = load_digits_dataset()
    module = expert(ExpertSpec("mlp-int", (1, 8, 8), 10, 64))
    x, y = data.x_train[:200], data.y_train[:200]
    mlp = MLPExpert(64, 10, 64).double()
    mlp.load_state_dict({name: w.double() * 2.0**-28 for name, w in module.weights().items()})
    loss = torch.nn.functional.cross_entropy(mlp(x.double()), y)
    loss.backward()
    new = module.integer_update(x, grad_of_loss(module(x), y), lr=0.5)
    for name, p in mlp.named_parameters():
        step = (new[name].double() - module.weights()[name].double()) * 2.0**-28
        expected = -0.5 * p.grad
        assert float((step - expected).norm() / expected.norm()) < 0.02, name


def grad_of_loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/d(output) of the mean cross-entropy, as the validator sends it (float32)."""
    output = output.detach().requires_grad_(True)
    torch.nn.functional.cross_entropy(output, y).backward()
    assert output.grad is not None
    return output.grad


def test_sgd_on_the_integer_expert_lowers_the_loss_on_digits() -> None:
    data = load_digits_dataset()
    module = expert(ExpertSpec("mlp-int", (1, 8, 8), 10, 64))
    losses = []
    for step in range(60):
        rows = slice(step % 14 * 100, step % 14 * 100 + 100)
        output = module(data.x_train[rows])
        losses.append(float(torch.nn.functional.cross_entropy(output, data.y_train[rows])))
        module.load_state_dict(module.integer_update(data.x_train[rows], grad_of_loss(output, data.y_train[rows]), 0.2))
    accuracy = float((module(data.x_test).argmax(1) == data.y_test).float().mean())
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
    assert accuracy > 0.85


def test_outputs_are_exact_float32_multiples_of_2_to_the_minus_16_and_saturate_at_128() -> None:
    module = expert()
    x, _ = sample(20)
    y = module(x)
    scaled = y.double() * 2.0**OUT_FRAC
    assert y.dtype == torch.float32 and torch.equal(scaled, scaled.round())
    huge = module(x * 1000.0)  # inputs saturate at +-256, outputs at [-128, 128)
    assert float(huge.max()) <= 128 - 2.0**-OUT_FRAC and float(huge.min()) >= -128
    assert torch.equal(module(torch.full((1, 1, 28, 28), 256.0)), module(torch.full((1, 1, 28, 28), 1e30)))


def test_weights_saturate_at_the_int32_range_instead_of_wrapping() -> None:
    module = expert()
    x, grad = sample(10)
    new = module.integer_update(x, grad * 1e6, lr=1000.0)  # steps far beyond [-8, 8)
    w = new["fc2.weight"]
    assert w.dtype == torch.int32
    assert int(w.max()) == 2**31 - 1 and int(w.min()) == -(2**31)


def test_a_zero_gradient_leaves_the_weights_unchanged() -> None:
    module = expert()
    x, grad = sample(10)
    assert as_bytes(module.integer_update(x, torch.zeros_like(grad), 0.1)) == as_bytes(module.weights())


@pytest.mark.parametrize("lr", [0.0, -0.1, 2.0**-26, 1024.0, float("nan"), float("inf")])
def test_a_learning_rate_outside_the_stated_range_is_refused(lr: float) -> None:
    with pytest.raises(ValueError, match="learning rate"):
        quantize_lr(lr)


def test_non_finite_inputs_or_gradients_are_refused() -> None:
    module = expert()
    x, grad = sample(4)
    with pytest.raises(ValueError, match="NaN"):
        module(x * float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        sgd_step(module.weights(), x, grad * float("inf"), 0.1)


def test_round_shift_rounds_to_nearest_with_ties_up_and_saturates_when_it_multiplies() -> None:
    v = torch.tensor([5, 6, 7, -5, -6, -7, 2**61])
    assert round_shift(v, 2).tolist() == [1, 2, 2, -1, -1, -2, 2**59]
    assert round_shift(v, 70).tolist() == [0] * 7
    assert round_shift(torch.tensor([3, -3, 2**61]), -2).tolist() == [12, -12, 2**62]


def test_mlp_int_is_a_registered_integer_preset_starting_from_the_mlp_s_weights_rounded() -> None:
    assert INTEGER_PRESETS == ("mlp-int",) and "mlp-int" in PRESETS
    weights = expert().weights()
    torch.manual_seed(0)
    mlp = build_expert(ExpertSpec("mlp", (1, 28, 28), 10))
    for name, w in mlp.state_dict().items():
        assert weights[name].dtype == torch.int32
        assert float((weights[name].double() * 2.0**-28 - w.double()).abs().max()) <= 2.0**-29
    with torch.device("meta"):  # edges build experts on the meta device before assigning weights
        assert build_expert(FASHION).state_dict()["fc1.weight"].dtype == torch.int32
