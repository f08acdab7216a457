"""Three storage nodes as real processes on 127.0.0.1: replication, kill -9, restart, corruption, bad messages."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bmoe.ledger.keys import save_identity
from bmoe.net.http.auth import SignedAuth, sign_request
from bmoe.net.store.command import main as store_main
from bmoe.net.store.placement import responsible_nodes
from bmoe.storage import cid_of
from tests.net import raw_http
from tests.net.cluster import Cluster, identity

LIMIT = 1024 * 1024
CLIENT = identity("client")


def blob(i: int, size: int = 1000) -> bytes:
    return (f"blob {i} ".encode() * (size // 7 + 1))[:size]


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("trio"), extra_args=("--max-body", str(LIMIT)))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def cluster(trio: Cluster) -> Cluster:
    trio.ensure_running()  # a test that failed half-way through a kill leaves no node down for the next
    return trio


@pytest.fixture
def signed() -> Iterator[httpx.Client]:
    with httpx.Client(auth=SignedAuth(CLIENT), timeout=10) as client:
        yield client


def stats(cluster: Cluster, name: str) -> dict[str, dict[str, int]]:
    with cluster.client() as client:
        return client.node_info(cluster.url(name))  # type: ignore[return-value]


def test_every_blob_lives_on_exactly_its_two_responsible_nodes(cluster: Cluster) -> None:
    with cluster.client() as store:
        for i, size in enumerate([0, 10, 1000, 300_000, 600_000, 5, 6, 7]):
            data = blob(i, size)
            cid = store.put(data)
            expected = {cluster.name_of(url) for url in responsible_nodes(cid, cluster.urls, 2)}
            assert cluster.holders(cid) == expected, cid
            assert {cluster.name_of(url) for url in store.locate(cid)} == expected
            assert store.get(cid) == data


def test_kill_9_then_the_replica_serves_and_the_restarted_node_has_its_blobs(cluster: Cluster,
                                                                            signed: httpx.Client) -> None:
    with cluster.client() as store:
        data = blob(100, 50_000)
        cid = store.put(data)
        first, second = (cluster.name_of(url) for url in responsible_nodes(cid, cluster.urls, 2))
        cluster.kill(first)  # SIGKILL: no shutdown, no flush beyond what put already fsynced
        assert store.get(cid) == data and store.has(cid) and store.size(cid) == len(data)
        assert store.locate(cid) == [cluster.url(second)]
        # a blob whose first node is the dead one is still stored twice, on the two live nodes
        late = next(blob(i) for i in range(200, 400)
                    if responsible_nodes(cid_of(blob(i)), cluster.urls, 1) == [cluster.url(first)])
        late_cid = store.put(late)
        assert cluster.holders(late_cid) == set(cluster.names) - {first}

        cluster.start(first)
        assert signed.get(f"{cluster.url(first)}/blobs/{cid}", params={"local": "1"}).content == data
        # it lacks the blob stored while it was down: asked for it, it fetches it from a peer and keeps it
        assert signed.get(f"{cluster.url(first)}/blobs/{late_cid}", params={"local": "1"}).status_code == 404
        assert signed.get(f"{cluster.url(first)}/blobs/{late_cid}").content == late
        assert first in cluster.holders(late_cid)
        assert stats(cluster, first)["blobs"]["repaired"] == 1


def test_a_corrupted_copy_on_one_node_is_detected_and_the_good_replica_read(cluster: Cluster) -> None:
    with cluster.client() as store:
        data = blob(300, 400_000)
        cid = store.put(data)
        first = cluster.name_of(responsible_nodes(cid, cluster.urls, 1)[0])
        path = cluster.data_dir(first) / cid[-3:-1] / cid
        path.write_bytes(b"X" + path.read_bytes()[1:])
        before = stats(cluster, first).get("errors", {}).get("corrupt", 0)
        assert store.get(cid) == data  # the first node refuses to serve its bad copy; the replica is read
        assert stats(cluster, first)["errors"]["corrupt"] == before + 1
        assert store.verify(cid)  # an intact copy is reachable
        store.put(data)  # putting the bytes again repairs the bad copy
        assert path.read_bytes() == data


def assert_refused(reply: httpx.Response | tuple[int, bytes], status: int, reason: str) -> None:
    code, content = (reply.status_code, reply.content) if isinstance(reply, httpx.Response) else reply
    assert code == status, content
    body = json.loads(content)
    assert body["reason"] == reason and isinstance(body["error"], str) and body["error"], body


def declared_too_large(port: int) -> tuple[int, bytes]:
    """A PUT announcing a body over the limit, and sending none of it."""
    return raw_http.declared_too_large("127.0.0.1", port, "PUT", "/blobs", LIMIT + 1)


def test_bad_messages_are_refused_counted_and_the_node_keeps_serving(cluster: Cluster, signed: httpx.Client) -> None:
    name = "node-a"
    url, host = cluster.url(name), cluster.url(name).removeprefix("http://")
    before = stats(cluster, name).get("errors", {})
    with httpx.Client(timeout=10) as raw:
        mallory = SignedAuth(identity("mallory"))  # a valid key that is not enrolled
        assert_refused(raw.put(f"{url}/blobs", content=b"spam", auth=mallory), 403, "unknown_key")
        forged = sign_request(CLIENT, "PUT", "/blobs", "", host, b"what was signed")
        forged["x-bmoe-content-sha256"] = forged["x-bmoe-content-sha256"][::-1]  # hash of another body
        assert_refused(raw.put(f"{url}/blobs", content=b"what was signed", headers=forged), 401, "bad_signature")
        once = sign_request(CLIENT, "PUT", "/blobs", "", host, b"only once")
        assert raw.put(f"{url}/blobs", content=b"only once", headers=once).status_code == 200
        assert_refused(raw.put(f"{url}/blobs", content=b"only once", headers=once), 409, "replayed")
        other = cluster.url("node-b")  # the same signed request replayed to another node: Host is signed
        assert_refused(raw.put(f"{other}/blobs", content=b"only once", headers=once), 401, "bad_signature")
        assert_refused(declared_too_large(cluster.ports[name]), 413, "too_large")
        chunked = signed.put(f"{url}/blobs", content=iter([b"z" * (LIMIT // 2)] * 3))  # no Content-Length
        assert_refused(chunked, 413, "too_large")
        assert_refused(signed.get(f"{url}/blobs/bafy-not-a-cid"), 400, "invalid_cid")
    after = stats(cluster, name)["errors"]
    for reason, count in {"unknown_key": 1, "bad_signature": 1, "replayed": 1, "too_large": 2,
                          "invalid_cid": 1}.items():
        assert after.get(reason, 0) - before.get(reason, 0) == count, (reason, after)
    with cluster.client() as store:  # still serving
        cid = store.put(b"after the abuse")
        assert store.get(cid) == b"after the abuse"


def run_cli(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bmoe.net.store", *map(str, args)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("case", ["missing key", "bad enrolment", "bad port", "too few peers", "not enrolled",
                                  "data dir is a file", "port in use", "bad peer URL", "unknown flag"])
def test_bad_flags_and_files_exit_2_with_one_line(cluster: Cluster, tmp_path: Path, case: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text('{"x": "not an address"}')
    (tmp_path / "a-file").write_text("")
    save_identity(tmp_path / "stranger.key", identity("stranger"))
    good = ["--key", cluster.key_file("node-a"), "--enrolled", cluster.enrolled, "--data-dir", tmp_path / "d"]
    args, needle = {
        "missing key": (["--key", tmp_path / "none.key", *good[2:]], "cannot read identity file"),
        "bad enrolment": ([*good[:2], "--enrolled", tmp_path / "bad.json", *good[4:]], "64 lower-case hex"),
        "bad port": ([*good, "--port", "http"], "--port"),
        "too few peers": ([*good, "--replication", "3", "--peers", cluster.url("node-b")], "needs at least 2 peer"),
        "not enrolled": (["--key", tmp_path / "stranger.key", *good[2:], "--peers", cluster.url("node-b")],
                         "is not in"),
        "data dir is a file": ([*good[:4], "--data-dir", tmp_path / "a-file", "--replication", "1"], "not a directory"),
        "port in use": ([*good, "--port", str(cluster.ports["node-a"]), "--replication", "1"], "cannot listen"),
        "bad peer URL": ([*good, "--peers", "ftp://x:1"], "invalid node URL"),
        "unknown flag": ([*good, "--colour"], "--colour"),
    }[case]
    with pytest.raises(SystemExit) as info:
        store_main([str(arg) for arg in args])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert info.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and needle in lines[0], lines
    assert not (tmp_path / "d").exists()  # nothing written before the inputs are validated


def test_port_zero_prints_where_it_listens_and_sigterm_stops_it(cluster: Cluster, tmp_path: Path) -> None:
    proc = run_cli("--port", "0", "--replication", "1", "--data-dir", tmp_path / "d",
                   "--key", cluster.key_file("node-a"), "--enrolled", cluster.enrolled)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "no listening line within 20 s"
        line = proc.stdout.readline()
        assert line.startswith("bmoe store: listening on http://127.0.0.1:"), line
        url = line.split()[4].rstrip(",")
        assert httpx.get(f"{url}/health", timeout=5).json()["url"] == url
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)  # uvicorn shuts down, then re-raises the signal
    finally:
        proc.kill()
        proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
