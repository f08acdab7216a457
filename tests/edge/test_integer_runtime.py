"""An edge runtime computes an integer expert's result and update to the same bytes under every profile.

The float ``mlp`` beside it, on the same data, differs under ``f64``: the check can tell.
"""

from __future__ import annotations

import torch

from bmoe.edge.profiles import PROFILES
from bmoe.edge.runtime import Encoded, ExpertRuntime, TaskInputs, weights_cid
from bmoe.moe.experts import ExpertSpec, build_expert
from bmoe.storage import MemoryStore, deserialize_tensors, serialize_tensors

IN_PROCESS = [name for name, profile in PROFILES.items() if profile.in_process]


def digests(preset: str) -> dict[str, tuple[str, str]]:
    """Per in-process profile: (result digest, update digest) of expert 0 on 300 routed rows."""
    spec = ExpertSpec(preset, (1, 28, 28), 10)
    torch.manual_seed(0)
    weights = {name: w.detach().clone() for name, w in build_expert(spec).state_dict().items()}
    store = MemoryStore()
    cid = store.put(serialize_tensors(weights))
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(400, 1, 28, 28, generator=generator)  # (B, 1, 28, 28)
    rows = torch.randperm(400, generator=generator)[:300].sort().values  # expert 0's routed samples
    grad = torch.randn(300, 10, generator=generator) / 300  # (n_e, C) dL/d(output)
    task = TaskInputs("task", "task-cid", "activation-cid", x, {0: rows})
    answers = {}
    for name in IN_PROCESS:
        runtime = ExpertRuntime(store, spec, profile=PROFILES[name])
        forward = runtime.forward(cid, runtime.weights(cid), task, 0, train=True)
        update, _ = runtime.update(forward, "grad-cid", grad, lr=0.1)
        answers[name] = (forward.encoded_result().digest, update.digest)
        assert weights_cid(deserialize_tensors(update.data)[0]) == update.cid
    return answers


def test_an_integer_expert_s_result_and_update_are_the_same_bytes_under_every_in_process_profile() -> None:
    answers = digests("mlp-int")
    assert len(answers) >= 6 and len(set(answers.values())) == 1, answers


def test_the_float_mlp_on_the_same_work_differs_under_float64_accumulation() -> None:
    answers = digests("mlp")
    assert answers["f64"][0] != answers["default"][0] and answers["f64"][1] != answers["default"][1]


def test_an_integer_update_commits_int32_weights() -> None:
    spec = ExpertSpec("mlp-int", (1, 8, 8), 10, 16)
    weights = build_expert(spec).state_dict()
    store = MemoryStore()
    cid = store.put(serialize_tensors(dict(weights)))
    runtime = ExpertRuntime(store, spec)
    task = TaskInputs("t", "t-cid", "a-cid", torch.randn(8, 1, 8, 8), {0: torch.arange(8)})
    forward = runtime.forward(cid, runtime.weights(cid), task, 0, train=True)
    update: Encoded = runtime.update(forward, "g", torch.randn(8, 10) / 8, 0.1)[0]
    new = deserialize_tensors(update.data)[0]
    assert {name: w.dtype for name, w in new.items()} == dict.fromkeys(weights, torch.int32)
    assert not torch.equal(new["fc2.weight"], weights["fc2.weight"])
