"""Expert computation for edges: grouped forward passes and SGD updates, memoised by content.

Within one process, honest replicas of the same expert (same weights CID) on the same input
(same task CID and activation CID) compute the same bytes, so a shared :class:`ExpertRuntime`
computes each (weights, input) once and hands every such replica the same result; tampered
weights have another CID and are computed separately. ``share=False`` gives each edge its own
runtime: the same code path, every replica computed independently. A test proves the ledger
head hash is identical either way.

A runtime computes under one numeric profile (``edge/profiles.py``: threads, oneDNN, float64
accumulation, chunked rows, device), and its memo keys carry the profile's name: edges share a
computation only when their profile, weights CID and input are all identical. An integer expert
(``moe/fixed_point.py``) takes its own exact SGD step instead of autograd, so its bytes are the same
under every profile.

Experts are kept by CID across rounds (the most recently used :data:`KEEP_WEIGHTS`), and so are the
updated weights this runtime computed: an edge whose update was accepted already holds the expert's
next weights and does not download them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bmoe.edge.profiles import DEFAULT, NumericProfile, get_profile
from bmoe.moe.experts import ExpertFactory, ExpertSpec, build_expert
from bmoe.moe.fixed_point import IntegerExpert
from bmoe.moe.payloads import decode_task_for_edge, encode_result
from bmoe.storage import BlobStore, cid_of, deserialize_tensors, serialize_tensors
from bmoe.verify.comparison import EXACT

Weights = dict[str, torch.Tensor]
KEEP_WEIGHTS = 64  # experts (and own updated weights) kept by CID across rounds, the most recently used


class AddressedWeights(dict[str, torch.Tensor]):
    """Weights decoded from (or encoded to) the canonical bytes of ``cid``: :func:`weights_cid` reads the
    CID instead of serialising and hashing them again. Weights are values: nobody writes into them (the
    runtime shares one copy between edges and rounds), and this dict refuses to be changed."""

    def __init__(self, cid: str, tensors: Weights) -> None:
        super().__init__(tensors)
        self.cid = cid

    def _frozen(self, *args: object, **kwargs: object) -> None:
        raise TypeError("addressed weights are not changed in place: build a new dict")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _frozen  # type: ignore[assignment]


@dataclass(frozen=True)
class TaskInputs:
    """What an edge downloads for a task: the samples and, per activated expert, its rows."""

    task_id: str
    task_cid: str
    activation_cid: str
    x: torch.Tensor  # (B, *input_shape)
    groups: dict[int, torch.Tensor]  # expert -> ascending sample indices (n_e,)
    grads: dict[int, torch.Tensor] | None = None  # a language model's backward task: expert -> dL/d(output) (n_e, d)


@dataclass(frozen=True)
class Encoded:
    """Canonical bytes with their CID and SHA-256 digest, computed once."""

    data: bytes
    cid: str
    digest: str

    @staticmethod
    def of(data: bytes) -> Encoded:
        return Encoded(data, cid_of(data), EXACT.key(data))  # the key edges commit (exact: the one comparison)


@dataclass
class Forward:
    """One expert's forward pass on its routed samples, kept for the backward pass."""

    key: tuple[str, str, str, int, str]  # weights CID, task CID, activation CID, expert, profile
    module: nn.Module | None  # None: an expert run as a function of its weights (``edge/lm_runtime.py``)
    output: torch.Tensor  # (n_e, C), attached to the graph in training
    inputs: torch.Tensor  # (n_e, *input_shape) the routed samples (an integer expert's step reads them)
    dtypes: dict[str, torch.dtype] = field(default_factory=dict)  # the stored weights' dtypes
    seconds: float = 0.0  # measured time of this forward pass (whoever of the replicas ran it)
    result: Encoded | None = None  # the untampered output, encoded on first use
    updates: dict[tuple[str, float], Encoded] = field(default_factory=dict)
    update_seconds: dict[tuple[str, float], float] = field(default_factory=dict)

    def encoded_result(self) -> Encoded:
        if self.result is None:
            self.result = Encoded.of(encode_result(self.output))
        return self.result


class ExpertRuntime:
    """Builds experts from stored weights and runs them; memoises per round by content."""

    def __init__(self, store: BlobStore, spec: ExpertSpec, factory: ExpertFactory | None = None,
                 profile: NumericProfile | None = None) -> None:
        self.store = store
        self.spec = spec
        self.factory = factory
        self.profile = profile if profile is not None else get_profile(DEFAULT)
        self._forwards: dict[tuple[str, str, str, int, str], Forward] = {}
        self._weights: dict[str, Weights] = {}  # by CID, least recently used first
        self._own: dict[str, AddressedWeights] = {}  # updated weights this runtime computed, by CID, oldest first
        self._tasks: dict[tuple[str, str], TaskInputs] = {}
        self._gradients: dict[str, torch.Tensor] = {}  # this round's decoded output gradients, by CID
        self._addressed: dict[bytes, list[AddressedWeights]] = {}  # recent tampered weights, by a sample
        self._spare: list[nn.Module] = []  # the last round's training modules, to hold new weights
        self._modules: dict[str, nn.Module] = {}  # inference-mode experts by weights CID, least recently used first
        self.forward_passes = 0
        self.backward_passes = 0
        self.compute_seconds = 0.0  # forward passes and SGD steps actually computed (not memo hits)

    def new_round(self) -> None:
        """Drop per-round memos (forward graphs, decoded tasks); weights stay cached by CID (the most
        recently used :data:`KEEP_WEIGHTS`), and so do the updated weights computed here."""
        if self.factory is None:  # a custom expert may hold more than its weights: built anew each time
            self._spare = [f.module for f in self._forwards.values() if f.module is not None and f.module.training]
        self._forwards.clear()
        self._tasks.clear()
        self._gradients.clear()
        for cache in (self._weights, self._own, self._addressed):
            for cid in list(cache)[:max(0, len(cache) - KEEP_WEIGHTS)]:
                del cache[cid]

    def weights(self, cid: str) -> Weights:
        """The expert's weights by CID (:class:`AddressedWeights`): kept, computed here (an own update),
        or downloaded."""
        tensors = self._weights.pop(cid, None)
        if tensors is None:
            tensors = self._own.pop(cid, None)  # the tensors its bytes were encoded from: the same bits
            if tensors is None:
                tensors = AddressedWeights(cid, deserialize_tensors(self.store.get(cid))[0])
        self._weights[cid] = tensors  # the most recently used last
        return tensors

    def addressed(self, weights: Weights) -> AddressedWeights:
        """``weights`` with the CID of their canonical bytes. Weights bit for bit equal to ones addressed lately
        (colluders' identical tampered copies; a persistent attacker's copy between strikes) reuse their CID;
        others are serialised and hashed."""
        if isinstance(weights, AddressedWeights):
            return weights
        sample = _sample(weights)
        same = self._addressed.pop(sample, []) if sample is not None else []
        if sample is not None:
            self._addressed[sample] = same  # the most recently used last
        for known in same:
            if _same_bits(known, weights):
                return known
        found = AddressedWeights(weights_cid(weights), weights)
        same.append(found)
        return found

    def holds(self, cid: str) -> bool:
        """Whether the weights of ``cid`` are here without a download."""
        return cid in self._weights or cid in self._own

    def decode_task(self, task: bytes, activation: bytes, num_experts: int) -> tuple[
            torch.Tensor, dict[int, torch.Tensor], dict[int, torch.Tensor] | None]:
        """What this runtime's experts compute on: the samples, each activated expert's rows, and no output
        gradients (a classifier's experts read their inputs from the task)."""
        x, groups = decode_task_for_edge(task, activation, num_experts)
        return x, groups, None

    def task_inputs(self, task_id: str, task_cid: str, activation_cid: str,
                    decode: Callable[[bytes, bytes], tuple[torch.Tensor, dict[int, torch.Tensor],
                                                            dict[int, torch.Tensor] | None]]) -> TaskInputs:
        key = (task_cid, activation_cid)
        if key not in self._tasks:
            x, groups, grads = decode(self.store.get(task_cid), self.store.get(activation_cid))
            self._tasks[key] = TaskInputs(task_id, task_cid, activation_cid, x, groups, grads)
        return self._tasks[key]

    def adopt_task(self, inputs: TaskInputs) -> None:
        """Use ``inputs`` for their task and activation instead of decoding the stored objects (the rows routed to
        this edge's experts, pushed by its validator)."""
        self._tasks[(inputs.task_cid, inputs.activation_cid)] = inputs

    def drop_task(self, task_cid: str, activation_cid: str) -> None:
        """Forget the inputs kept for a task (they lack an expert it must now compute: decode it whole)."""
        self._tasks.pop((task_cid, activation_cid), None)

    def gradient(self, cid: str, load: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The output gradient of ``cid``, decoded by ``load`` once a round for every edge served here (the
        same CID is the same bytes, so the same tensor; nobody writes into it)."""
        if cid not in self._gradients:
            self._gradients[cid] = load()
        return self._gradients[cid]

    def forward(self, weights_cid: str, weights: Weights, task: TaskInputs, expert: int,
                train: bool) -> Forward:
        """The expert with ``weights`` on its routed samples of ``task`` (memoised)."""
        profile = self.profile
        key = (weights_cid, task.task_cid, task.activation_cid, expert, profile.name)
        if key not in self._forwards:
            started = time.perf_counter()
            module = self._module(weights_cid, weights) if not train else self._build(weights, train)
            x_e = task.x[task.groups[expert]]  # (n_e, *input_shape)
            with profile.computing(), torch.set_grad_enabled(train):
                output = profile.forward(module, x_e)  # (n_e, C) float32
            dtypes = {name: tensor.dtype for name, tensor in weights.items()}
            self._forwards[key] = Forward(key, module, output, x_e, dtypes, time.perf_counter() - started)
            self.compute_seconds += self._forwards[key].seconds
            self.forward_passes += 1
        return self._forwards[key]

    def _build(self, weights: Weights, train: bool) -> nn.Module:
        """An expert holding ``weights``: one of the last round's training modules, given these weights (a
        preset expert holds nothing but its parameters and buffers), or a new one."""
        if self._spare:
            module = self._spare.pop()
        else:
            with torch.device("meta"):  # no random init: the weights are assigned right away
                module = build_expert(self.spec, self.factory)
        module.load_state_dict(weights, assign=True)
        module = self.profile.prepare(module)
        return module.train(train)

    def _module(self, cid: str, weights: Weights) -> nn.Module:
        """The expert of ``cid`` in inference mode, built once and kept (the most recently used
        :data:`KEEP_WEIGHTS`): serving runs the same experts task after task, and nothing writes into them."""
        module = self._modules.pop(cid, None)
        if module is None:
            module = self._build(weights, False)
        self._modules[cid] = module
        while len(self._modules) > KEEP_WEIGHTS:
            del self._modules[next(iter(self._modules))]
        return module

    def update(self, forward: Forward, grad_cid: str, grad: torch.Tensor, lr: float) -> tuple[Encoded, float]:
        """SGD step of ``forward``'s expert with the output gradient ``grad``: the new weights, encoded,
        and the measured seconds the step took (whichever replica ran it)."""
        memo = (grad_cid, lr)
        if memo not in forward.updates:
            started = time.perf_counter()
            if isinstance(forward.module, IntegerExpert):  # exact integers: the same bytes under any profile
                with self.profile.computing():
                    new = forward.module.integer_update(forward.inputs, grad, lr)
            else:
                new = self._float_step(forward, grad, lr)
            forward.updates[memo] = self.encode_own(new)
            forward.update_seconds[memo] = time.perf_counter() - started
            self.compute_seconds += forward.update_seconds[memo]
            self.backward_passes += 1
        return forward.updates[memo], forward.update_seconds[memo]

    def encode_own(self, new: Weights) -> Encoded:
        """Updated weights computed here, encoded; kept by CID as the expert's next weights, if accepted (as the
        tensors, read-only: decoding their bytes would give the same bits)."""
        encoded = Encoded.of(serialize_tensors(new))
        dense = {name: t.detach().to("cpu").resolve_conj().resolve_neg().contiguous() for name, t in new.items()}
        self._own[encoded.cid] = AddressedWeights(encoded.cid, dense)  # what the bytes hold, as serialised
        return encoded

    def _float_step(self, forward: Forward, grad: torch.Tensor, lr: float) -> Weights:
        assert forward.module is not None  # this runtime's forward passes build modules
        forward.module.zero_grad(set_to_none=True)
        with self.profile.computing():
            forward.output.backward(grad)
        with torch.no_grad():  # stepped in the profile's precision, stored in the weights' own dtype
            return {name: ((p - lr * p.grad) if p.grad is not None else p.detach().clone()).to(
                        device="cpu", dtype=forward.dtypes.get(name, p.dtype))
                    for name, p in forward.module.state_dict(keep_vars=True).items()}


def _sample(weights: Weights) -> bytes | None:
    """A cheap fingerprint to look weights up by (names, dtypes, shapes, a few leading values); None for
    weights this shortcut does not handle (not dense CPU tensors)."""
    parts = []
    for name in sorted(weights):
        tensor = weights[name]
        if tensor.device.type != "cpu" or tensor.layout != torch.strided or tensor.is_conj() or tensor.is_neg():
            return None
        head = _raw(tensor.detach().reshape(-1)[:8]).tobytes()
        parts.append(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}:".encode() + head)
    return b"|".join(parts)


def _raw(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's bytes, as an array of bytes (compared bit for bit: -0.0 is not 0.0, NaN is itself)."""
    return tensor.contiguous().reshape(-1).view(torch.uint8).numpy()


def _same_bits(a: Weights, b: Weights) -> bool:
    """Whether ``a`` and ``b`` have the same names, dtypes, shapes and bytes: the same canonical bytes."""
    if sorted(a) != sorted(b):
        return False
    for name in a:
        x, y = a[name].detach(), b[name].detach()
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        if not np.array_equal(_raw(x), _raw(y)):
            return False
    return True


def weights_cid(weights: Weights) -> str:
    """The CID of ``weights``' canonical bytes (read from :class:`AddressedWeights`, else computed)."""
    if isinstance(weights, AddressedWeights):
        return weights.cid
    return cid_of(serialize_tensors(weights))
