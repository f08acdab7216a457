"""A generation edge's HTTP app, in this process (uvicorn in a thread): it answers a layer's calls with the bits the
validator's own experts compute and signs commitments the ledger accepts; each bad request gets one JSON error and
the edge keeps serving; the validator's side (``RemoteGenerationEdge``) turns a dead edge into ``EdgeGone`` within
its timeout and an answer of the wrong shape into ``MalformedAnswer``; the command refuses bad flags in one line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bmoe.ledger.generation import call_message
from bmoe.ledger.keys import Identity, derive_identity, generate_identity, save_identity, verify_signature
from bmoe.lm.decoding.expert_calls import ModelExperts
from bmoe.lm.model import MoETransformer
from bmoe.net.frames import FRAME_MEDIA_TYPE
from bmoe.net.generation.command import main as edge_main
from bmoe.net.generation.experts import ServedExperts, load_experts, read_model_file
from bmoe.net.generation.local import prepare_model
from bmoe.net.generation.remote import RemoteGenerationEdge
from bmoe.net.generation.service import GenerationEdgeService
from bmoe.net.generation.wire import decode_calls, encode_calls
from bmoe.net.http.auth import SignedAuth
from bmoe.net.http.guard import SignedRequestGuard
from bmoe.net.http.stats import Counters
from bmoe.protocol.generation.edges import EdgeGone, GenerationEdge
from bmoe.protocol.generation.fast_path import MalformedAnswer
from bmoe.run.generation import GenerationSettings, open_session
from bmoe.storage import DirectoryStore, cid_of
from tests.lm.tiny_models import tiny_model
from tests.net.cluster import free_ports, serving

EDGE, CALLER = derive_identity(7, "edge-test"), derive_identity(7, "validator-test")


@pytest.fixture(scope="module")
def model() -> MoETransformer:
    return tiny_model()


@pytest.fixture(scope="module")
def served(model: MoETransformer, tmp_path_factory: pytest.TempPathFactory) -> tuple[ServedExperts, Path, Path]:
    root = tmp_path_factory.mktemp("generation-edge")
    store, model_file = prepare_model(root, model)
    return load_experts(DirectoryStore(store, create=False), *read_model_file(model_file)), store, model_file


@pytest.fixture
def edge_url(served: tuple[ServedExperts, Path, Path]) -> Iterator[str]:
    experts = served[0]
    service = GenerationEdgeService(GenerationEdge(EDGE, experts), experts, [CALLER.address])
    with serving(lambda url: service.app()) as url:
        yield url


def _rows(model: MoETransformer, n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, model.config.hidden_size, generator=torch.Generator().manual_seed(seed))  # (n, d)


def test_an_edge_process_answers_with_the_validators_bits_and_signs_what_the_ledger_checks(
        model: MoETransformer, edge_url: str) -> None:
    remote = RemoteGenerationEdge(edge_url, EDGE.address, CALLER)
    routed = {0: _rows(model, 3, 1), 2: _rows(model, 1, 2), 3: _rows(model, 5, 3)}
    answer = remote.compute(1, routed)
    local = ModelExperts(model)(1, routed)
    assert set(answer) == set(local)
    assert all(torch.equal(answer[e], local[e]) for e in routed)  # every bit
    assert remote.rows_computed == 9
    cid = cid_of(answer[2].numpy().astype("<f4").tobytes())
    signature = remote.commit("gen-0", 4, 6, "ab" * 32, cid)
    assert verify_signature(EDGE.address, call_message("gen-0", 4, 6, "ab" * 32, cid), signature)
    remote.close()


def _signed(url: str, who: Identity = CALLER) -> httpx.Client:
    return httpx.Client(base_url=url, auth=SignedAuth(who, trusted=[EDGE.address]), timeout=5.0)


@pytest.mark.parametrize("path, body, status, reason", [
    ("/compute", b"not a frame", 400, "malformed_calls"),
    ("/compute", "layer 7", 400, "unservable_calls"),
    ("/compute", "expert 9", 400, "unservable_calls"),
    ("/compute", "width 5", 400, "unservable_calls"),
    ("/compute", "nan", 400, "unservable_calls"),
    ("/commit", b"{not json", 400, "malformed_json"),
    ("/commit", b'{"generation": "g", "chunk": 0, "slot": 99, "inputs": "00", "outputs": "x"}', 400, "bad_commit"),
    ("/commit", b'{"generation": "g", "chunk": -1}', 400, "bad_commit"),
    ("/elsewhere", b"", 404, "no_route"),
])
def test_each_bad_request_gets_one_error_and_the_edge_keeps_serving(
        model: MoETransformer, edge_url: str, path: str, body: bytes | str, status: int, reason: str) -> None:
    d = model.config.hidden_size
    bodies = {"layer 7": encode_calls(7, {0: _rows(model, 1, 0)}),
              "expert 9": encode_calls(0, {9: _rows(model, 1, 0)}),
              "width 5": encode_calls(0, {1: torch.zeros(2, 5)}),
              "nan": encode_calls(0, {1: torch.full((2, d), float("nan"))})}
    content = bodies[body] if isinstance(body, str) else body
    with _signed(edge_url) as client:
        reply = client.post(path, content=content)
        assert reply.status_code == status
        assert reply.json()["reason"] == reason and reply.json()["error"]
        stats = client.get("/stats").json()
        assert stats["errors"][reason] == 1
        ok = client.post("/compute", content=encode_calls(0, {1: _rows(model, 2, 0)}),
                         headers={"content-type": FRAME_MEDIA_TYPE})
        assert ok.status_code == 200 and decode_calls(ok.content)[1][1].shape == (2, d)


def test_only_the_enrolled_validators_may_call_it(model: MoETransformer, edge_url: str) -> None:
    assert httpx.post(f"{edge_url}/compute", content=encode_calls(0, {1: _rows(model, 1, 0)})).status_code == 401
    with _signed(edge_url, derive_identity(7, "stranger")) as client:
        reply = client.post("/commit", json={"generation": "g", "chunk": 0, "slot": 0, "inputs": "00" * 32,
                                             "outputs": cid_of(b"x")})
        assert reply.status_code == 403 and reply.json()["reason"] == "unknown_key"


def test_a_dead_edge_is_gone_within_its_timeout_and_is_not_asked_again(model: MoETransformer) -> None:
    (port,) = free_ports(1)
    remote = RemoteGenerationEdge(f"http://127.0.0.1:{port}", EDGE.address, CALLER, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(EdgeGone):
        remote.compute(0, {1: _rows(model, 1, 0)})
    assert time.monotonic() - started < 1.5 and not remote.alive
    with pytest.raises(EdgeGone):
        remote.commit("g", 0, 0, "00" * 32, cid_of(b"x"))


def _liar_app(rows_back: int) -> Starlette:
    """An edge (it signs its replies) answering each expert with ``rows_back`` rows fewer than asked."""
    async def compute(request: Request) -> Response:
        layer, calls = decode_calls(await request.body())
        return Response(encode_calls(layer, {e: rows[rows_back:] for e, rows in calls.items()}),
                        media_type=FRAME_MEDIA_TYPE)
    app = Starlette(routes=[Route("/compute", compute, methods=["POST"])])
    return SignedRequestGuard(app, identity=EDGE, enrolled={CALLER.address}, counters=Counters())  # type: ignore[return-value]


def test_an_answer_of_the_wrong_shape_is_malformed(model: MoETransformer) -> None:
    with serving(lambda url: _liar_app(1)) as url:
        remote = RemoteGenerationEdge(url, EDGE.address, CALLER)
        with pytest.raises(MalformedAnswer, match="expert 2 of layer 0"):
            remote.compute(0, {2: _rows(model, 3, 0)})
        assert not remote.alive
    with serving(lambda url: _liar_app(0)) as url:  # right shapes, but signed by a key that is not the edge's
        remote = RemoteGenerationEdge(url, derive_identity(7, "another").address, CALLER)
        with pytest.raises(MalformedAnswer, match="did not sign"):
            remote.compute(0, {2: _rows(model, 3, 0)})


def test_the_command_refuses_bad_flags_in_one_line(served: tuple[ServedExperts, Path, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, store, model_file = served
    save_identity(tmp_path / "edge.key", EDGE)
    (tmp_path / "callers.json").write_text(f'{{"validator-0": "{CALLER.address}"}}')
    common = ["--key", str(tmp_path / "edge.key"), "--enrolled", str(tmp_path / "callers.json")]
    (tmp_path / "bad-model.json").write_text('{"gate_cid": 3}')
    for argv, says in [
        ([*common, "--store", str(tmp_path / "nowhere"), "--model", str(model_file)], "not a directory"),
        ([*common, "--store", str(store), "--model", str(tmp_path / "bad-model.json")], "gate_cid"),
        ([*common, "--store", str(store), "--model", str(model_file), "--attack", "zero", "--attack-layer", "5"],
         "the model has 2 layers"),
        ([*common, "--store", str(store), "--model", str(model_file), "--attack-expert", "1"], "need --attack"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            edge_main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and says in err and err.count("\n") == 1


def test_a_session_enrols_the_keys_of_the_edges_it_is_given(model: MoETransformer) -> None:
    settings = GenerationSettings(edges=3)
    edges = [GenerationEdge(generate_identity(f"edge-{i}"), ModelExperts(model)) for i in range(3)]
    s = open_session(model, settings, edges=edges)
    assert list(s.node.view().edge_records) == [e.address for e in edges]  # their own keys, in order
    assert s.edges == edges
    with pytest.raises(ValueError, match="2 edges given for settings of 3"):
        open_session(model, settings, edges=edges[:2])
    with pytest.raises(ValueError, match="attack_for"):
        open_session(model, settings, lambda index: None, edges=edges)
