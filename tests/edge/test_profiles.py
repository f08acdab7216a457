"""Numeric profiles change honest float results the way real hardware does, and only that.

Each profile is checked against ``default`` on an input where it differs on this machine, or is
stated identical here. With torch 2.13 CPU: ``threads1`` is ``default`` when the process runs one thread;
``nodnn`` leaves an MLP bit-identical and changes a CNN (oneDNN convolutions); ``threads2`` changes a
CNN's weight gradients, and an MLP's bytes only where MKL's kernels split the reduction over threads
(on AVX2 processors; its AVX-512 kernels split an MLP's GEMMs over rows, which changes nothing);
``f64`` and ``chunked`` change an MLP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bmoe.edge.profiles import PROFILES, FleetError, get_profile, is_default_fleet, parse_fleet
from bmoe.moe.experts import ExpertSpec, build_expert
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.session import Session
from bmoe.verify.comparison import HonestDisagreement
from tests.conftest import small_config

MLP = ExpertSpec("mlp", (1, 8, 8), 10, 256)  # digits' expert
CNN = ExpertSpec("cnn", (1, 28, 28), 10, 256)  # Fashion-MNIST's shape


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # bmoe's default --threads
    yield
    torch.set_num_threads(before)


def compute(profile_name: str, spec: ExpertSpec, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, weight gradients) of one forward and backward pass under the profile."""
    profile = get_profile(profile_name)
    torch.manual_seed(0)
    module = profile.prepare(build_expert(spec))
    x = torch.randn(rows, *spec.input_shape)  # (n, *shape)
    grad = torch.randn(rows, spec.num_classes)  # (n, C)
    with profile.computing():
        output = profile.forward(module, x)  # (n, C) float32
        output.backward(grad)
    grads = torch.cat([p.grad.float().flatten() for p in module.parameters()])
    return output.detach(), grads


def differs(name: str, spec: ExpertSpec, rows: int) -> bool:
    out, grads = compute(name, spec, rows)
    base_out, base_grads = compute("default", spec, rows)
    assert out.dtype == torch.float32 and out.shape == base_out.shape
    assert torch.allclose(out, base_out, atol=1e-4) and torch.allclose(grads, base_grads, atol=1e-3)
    return not (torch.equal(out, base_out) and torch.equal(grads, base_grads))


@pytest.mark.parametrize(("name", "spec", "rows"), [("f64", MLP, 40), ("chunked", MLP, 40),
                                                    ("threads2", CNN, 100), ("nodnn", CNN, 40)])
def test_each_in_process_profile_changes_honest_bytes_but_not_the_answer(name: str, spec: ExpertSpec,
                                                                         rows: int) -> None:
    assert differs(name, spec, rows)


def test_profiles_documented_identical_here_are_identical() -> None:
    assert not differs("threads1", MLP, 40)  # the process already runs one thread
    assert not differs("nodnn", MLP, 40)  # linear layers use MKL's sgemm either way


def test_two_threads_change_an_mlp_only_where_mkl_splits_its_reductions() -> None:
    splits_rows = "avx512f" in Path("/proc/cpuinfo").read_text()  # MKL's AVX-512 GEMMs split rows over threads
    assert differs("threads2", MLP, 40) is not splits_rows


def test_a_profile_restores_the_process_settings_after_computing() -> None:
    with get_profile("threads2").computing():
        assert torch.get_num_threads() == 2
    with get_profile("nodnn").computing():
        assert not torch.backends.mkldnn.enabled
    assert torch.get_num_threads() == 1 and torch.backends.mkldnn.enabled


_PROBE = """
import json, sys, torch
torch.set_num_threads(1)
from tests.edge.test_profiles import MLP, compute
from bmoe.moe.experts import ExpertSpec
out = {}
for spec, rows in ((MLP, 40), (ExpertSpec("mlp", (1, 28, 28), 10, 256), 300)):
    o, g = compute("default", spec, rows)
    out[str(spec.input_shape)] = [o.flatten().tolist(), g.tolist()]
json.dump(out, sys.stdout)
"""


def _probe(env: dict[str, str]) -> dict[str, list[list[float]]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MKL_")}
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
                          env={**clean, **env}, cwd=Path(__file__).parents[2], timeout=120)
    return dict(json.loads(done.stdout))


def test_mkl_profiles_change_bytes_in_an_edge_process_started_with_them() -> None:
    base = _probe({})
    compat = _probe(dict(get_profile("mkl-compat").env))
    assert compat["(1, 8, 8)"] != base["(1, 8, 8)"]  # COMPATIBLE differs even on digits' shapes
    avx2 = _probe(dict(get_profile("mkl-avx2").env))
    if "avx512f" in Path("/proc/cpuinfo").read_text():
        assert avx2["(1, 28, 28)"] != base["(1, 28, 28)"]  # the AVX2 path only differs from AVX-512's
    else:
        pytest.skip("MKL_CBWR=AVX2 is MKL's own path on a CPU without AVX-512")


def test_an_environment_profile_refuses_a_process_started_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MKL_CBWR", raising=False)
    with pytest.raises(FleetError, match="MKL_CBWR=COMPATIBLE"):
        get_profile("mkl-compat").check_process()
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    get_profile("mkl-compat").check_process()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine: no cuda profile")
def test_cuda_profile_changes_bytes() -> None:
    assert differs("cuda", MLP, 40) or differs("cuda", CNN, 100)


def test_cuda_is_known_only_where_a_gpu_exists() -> None:
    assert ("cuda" in PROFILES) == torch.cuda.is_available()


def test_a_fleet_lists_each_edge_profile_in_edge_order() -> None:
    assert parse_fleet("threads1=2,threads2=1,f64=2", 5) == ("threads1", "threads1", "threads2", "f64", "f64")
    assert parse_fleet("", 3) == ("default",) * 3
    assert is_default_fleet("") and is_default_fleet("default=5") and not is_default_fleet("default=4,f64=1")


@pytest.mark.parametrize(("fleet", "message"), [
    ("f64=4", "fleet counts sum to 4, but there are 5 edges"),
    ("gpu=5", "unknown numeric profile 'gpu'"),
    ("f64=two,default=3", "COUNT must be a whole number"),
    ("f64=0,default=5", "COUNT must be a whole number"),
    ("f64=-1,default=6", "COUNT must be a whole number"),
    ("f64", "must look like PROFILE=COUNT"),
    ("f64=2,f64=3", "names profile f64 twice"),
])
def test_a_bad_fleet_is_one_config_error_naming_the_problem(fleet: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(fleet=fleet)


def test_the_default_fleet_keeps_the_config_hash() -> None:
    assert RunConfig().hash() == RunConfig(fleet="default=10").hash() != RunConfig(fleet="default=9,f64=1").hash()


def test_an_environment_profile_is_refused_in_process_before_anything_is_written(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="mkl-compat sets MKL_CBWR"):
        Session(small_config(fleet="default=4,mkl-compat=1"), dataset=tiny_data, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_sharing_keys_on_the_profile(tiny_data) -> None:  # type: ignore[no-untyped-def]
    shared = Session(small_config(fleet="default=2,f64=3"), dataset=tiny_data)
    assert [edge.runtime.profile.name for edge in shared.edges] == ["default"] * 2 + ["f64"] * 3
    assert len(shared.runtimes) == 2 and shared.edges[0].runtime is shared.edges[1].runtime
    separate = Session(small_config(fleet="default=2,f64=3", share_compute=False), dataset=tiny_data)
    assert len(separate.runtimes) == 5


def test_float64_accumulation_stores_float32_weights(tiny_data) -> None:  # type: ignore[no-untyped-def]
    with Session(small_config(fleet="f64=5", rounds=2), dataset=tiny_data) as session:
        session.train()
        state = session.node.state
        from bmoe.storage import deserialize_tensors

        for cid in state.expert_cids:
            tensors, _ = deserialize_tensors(session.store.get(cid))
            assert all(t.dtype == torch.float32 for t in tensors.values())


@pytest.mark.parametrize("fleet", ["f64=5", "default=2,threads1=2,nodnn=1"])  # alike on every processor
def test_sharing_on_and_off_give_the_same_ledger_on_a_fleet_that_agrees(tiny_data, fleet: str) -> None:  # type: ignore[no-untyped-def]
    heads = []
    for share in (True, False):
        with Session(small_config(fleet=fleet, share_compute=share, malicious_ratio=0.4), dataset=tiny_data) as s:
            s.train()
            heads.append(s.head_hash)
    assert heads[0] == heads[1]


@pytest.mark.parametrize("fleet", ["default=3,f64=2", "default=4,chunked=1", "threads1=2,f64=1,chunked=2"])
def test_a_mixed_fleet_under_exact_comparison_fails_loudly_at_the_same_round_sealing_nothing(
        tiny_data, fleet: str) -> None:  # type: ignore[no-untyped-def]
    outcomes = []
    for share in (True, False):
        session = Session(small_config(fleet=fleet, share_compute=share, batch_size=64), dataset=tiny_data)
        before = session.head_hash
        with pytest.raises(HonestDisagreement) as failure:
            session.train()
        assert session.head_hash == before  # the failing round sealed nothing
        outcomes.append((len(session.history), str(failure.value).split(";")[0]))
    assert outcomes[0] == outcomes[1]
