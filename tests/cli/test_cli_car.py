"""`bmoe export-car` writes a run's objects as one CAR; `bmoe import-car` rebuilds them so the run audits clean
from the imported copy; a corrupted CAR is one line, exit 2, and nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bmoe.storage import DirectoryStore
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here as bmoe


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("car")
    run_dir = root / "run"
    result = bmoe("train", "--run-dir", run_dir, "--rounds", "2", *SMALL)
    assert result.returncode == 0, result.stderr
    result = bmoe("export-car", run_dir)
    assert result.returncode == 0, result.stderr
    assert "objects" in result.stdout and (root / "run.car").is_file()
    return run_dir, root / "run.car"


def test_an_imported_car_gives_back_the_run_s_objects_and_the_run_audits_clean(exported: tuple[Path, Path],
                                                                              tmp_path: Path) -> None:
    run_dir, car = exported
    copy = tmp_path / "copy"
    result = bmoe("import-car", car, "--run-dir", copy)
    assert result.returncode == 0, result.stderr
    original, imported = DirectoryStore(run_dir / "store", create=False), DirectoryStore(copy / "store", create=False)
    assert list(imported.cids()) == list(original.cids())
    assert all(imported.get(cid) == original.get(cid) for cid in original.cids())
    for name in ("chain.sqlite", "config.json", "metrics.json"):
        shutil.copy(run_dir / name, copy / name)
    result = bmoe("audit", copy)
    assert result.returncode == 0, result.stderr


def test_a_corrupted_car_is_refused_in_one_line_and_writes_nothing(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, car = exported
    data = bytearray(car.read_bytes())
    data[len(data) // 2] ^= 1
    bad = tmp_path / "bad.car"
    bad.write_bytes(bytes(data))
    assert_user_error(bmoe("import-car", bad, "--run-dir", tmp_path / "copy"), str(bad), "refused")
    assert not (tmp_path / "copy").exists()


def test_bad_paths_are_one_line_each(tmp_path: Path) -> None:
    assert_user_error(bmoe("export-car", tmp_path), "no store/")
    assert_user_error(bmoe("import-car", tmp_path, "--store-dir", tmp_path / "x"), "directory")
    assert not (tmp_path / "x").exists()
