"""Verified generation on a local cluster of edge processes (``python -m bmoe.net.generation``, each with its own
key, the model's experts loaded by CID): the tokens are the in-process generation's, chunk for chunk; an edge
SIGKILLed mid-generation is dropped and the generation goes on on the others, nothing rebuilt and nothing recorded
against it as dissent; an edge process lying on one (layer, expert) is located and recorded as in process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.lm.decoding.engine import complete
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer
from bmoe.net.generation.local import LocalEdges, prepare_model
from bmoe.protocol.generation.records import decode_records
from bmoe.run.generation import GenerationSession, GenerationSettings, open_session, session_validator
from tests.generation.helpers import clean_tokens, generate, model, session

pytestmark = pytest.mark.slow  # starts edge processes (python -m bmoe.net.generation)

SETTINGS = GenerationSettings(edges=4, replicas=1, chunk_steps=4)
LIAR = ["--attack", "zero", "--attack-layer", "1", "--attack-expert", "2"]
SLOT_OF_LIE = 1 * 4 + 2  # layer 1, expert 2 of the tiny model (4 experts a layer)


@pytest.fixture(scope="module")
def tiny() -> MoETransformer:
    return model()


def _edges(root: Path, m: MoETransformer, settings: GenerationSettings,
           attacks: dict[int, list[str]] | None = None) -> LocalEdges:
    store, model_file = prepare_model(root, m)
    return LocalEdges(root, settings.edges, store, model_file, session_validator(m, settings).address, attacks)


def _remote_session(m: MoETransformer, settings: GenerationSettings, edges: LocalEdges) -> GenerationSession:
    return open_session(m, settings, edges=edges.remote(session_validator(m, settings), timeout=15.0))


@pytest.fixture(scope="module")
def honest(tiny: MoETransformer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEdges]:
    with _edges(tmp_path_factory.mktemp("honest-edges"), tiny, SETTINGS) as edges:
        yield edges


def test_a_generation_on_edge_processes_is_the_in_process_one(tiny: MoETransformer, honest: LocalEdges) -> None:
    s = _remote_session(tiny, SETTINGS, honest)
    assert generate(s) == clean_tokens(tiny)
    in_process = session(tiny, edges=4)
    generate(in_process)
    stats = s.decoding.stats
    assert stats.chunks == in_process.decoding.stats.chunks == s.node.view().height > 1
    assert stats.disputes == stats.rollbacks == 0 and not stats.gone and not stats.accused
    genesis = s.node.view()
    assert [p.address for p in honest.processes] == list(genesis.edge_records)  # their own keys, enrolled
    assert sum(edge.rows_computed for edge in s.edges) == stats.fast_rows + stats.replica_rows


def test_an_edge_killed_mid_generation_is_dropped_and_the_tokens_stay_clean(
        tiny: MoETransformer, tmp_path: Path) -> None:
    with _edges(tmp_path, tiny, SETTINGS) as edges:
        s = _remote_session(tiny, SETTINGS, edges)
        victim = edges.processes[2]
        tokens = generate(s, lambda step: victim.kill() if step == 5 else None)
        assert tokens == clean_tokens(tiny)
        assert s.decoding.stats.gone == [victim.address]
        state = s.node.view()
        assert all(state.edge_records[e.address].dissent == 0 for e in s.edges)
        assert s.decoding.stats.chunks > 2  # chunks sealed after the kill, on the three left


def test_a_lying_edge_process_is_located_and_recorded(tiny: MoETransformer, tmp_path: Path) -> None:
    settings = GenerationSettings(edges=5, replicas=1, chunk_steps=4, stake=1000)
    with _edges(tmp_path, tiny, settings, {4: LIAR}) as edges:
        s = _remote_session(tiny, settings, edges)
        assert generate(s) == clean_tokens(tiny)
        liar = edges.processes[4].address
        state = s.node.view()
        assert state.edge_records[liar].dissent > 0 and state.balances[liar].slashed > 0
        assert all(state.edge_records[p.address].dissent == 0 for p in edges.processes[:4])
        assert s.decoding.stats.accused == [liar] and s.decoding.stats.rollbacks > 0
        for sealed in s.decoding.sealed:
            for call in decode_records(s.store.get(sealed.records)).calls:
                if call.disputed:
                    assert call.slot == SLOT_OF_LIE and call.commitments[liar]["outputs"] != call.accepted



def test_the_serving_docs_snippet_runs(tiny: MoETransformer, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()
    section = docs[docs.index("## Verified generation on edge processes"):]
    snippet = re.findall(r"```py\n(.*?)```", section, flags=re.S)[0]  # the section's first (docs/serving.md)
    exec(snippet, {"root": tmp_path, "model": tiny})
    params = SamplingParams(max_tokens=8, seed=0)
    in_process = open_session(tiny, GenerationSettings(edges=4, replicas=1, chunk_steps=4)).decoding
    request = in_process.submit([1, 2, 3], params)
    while in_process.busy:
        in_process.step()
    assert in_process.result(request).tokens == complete(tiny, [1, 2, 3], params).tokens
    assert capsys.readouterr().out.strip() == f"{in_process.result(request).tokens} {in_process.stats.chunks} chunks"
