"""scripts/prepare_data.py: drops each kind of bad photo with its reason, writes seeded manifests and copies."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pix2color.commands.common import run_cli
from pix2color.config import DataConfig
from pix2color.data import build_datasets, list_images

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "prepare_data.py"


@pytest.fixture
def prepare_main(load_script):
    """The script's ``main(argv)``, run in this process."""
    return load_script("prepare_data").main


@pytest.fixture
def photos(make_image, bad_files, tmp_path) -> dict[str, Path]:
    """A folder of ten good photos plus one of each kind that prepare_data drops."""
    good = {f"good{i}": make_image(f"src/good{i}.jpg", seed=i, quality=95) for i in range(10)}
    bad = {
        "gray": make_image("src/gray.jpg", seed=20, mode="L"),
        "small": make_image("src/small.png", size=(40, 30), seed=21),
        "copy": Path(shutil.copy(good["good3"], tmp_path / "src/zz_copy.jpg")),
    }
    for path in bad_files.values():
        path.rename(tmp_path / "src" / path.name)
    return good | bad


def read_report(out: Path) -> dict[str, str]:
    lines = (out / "report.tsv").read_text().splitlines()
    assert lines[0] == "file\treason\tdetail"
    return {Path(line.split("\t")[0]).name: line.split("\t")[1] for line in lines[1:]}


def test_prepare_drops_each_kind_with_its_reason_and_splits_with_a_seed(prepare_main, photos, tmp_path, capsys):
    argv = [str(tmp_path / "src"), "--val-fraction", "0.3", "--workers", "1"]
    assert prepare_main([*argv, "--out", str(tmp_path / "a")]) == 0
    summary = capsys.readouterr().out
    assert "dropped 6 (duplicate 1, grayscale 1, too_small 1, unreadable 3)" in summary
    assert "kept 10: train 7" in summary and "val 3" in summary
    assert read_report(tmp_path / "a") == {
        "empty.jpg": "unreadable",
        "gray.jpg": "grayscale",
        "notes.jpg": "unreadable",
        "small.png": "too_small",
        "truncated.jpg": "unreadable",
        "zz_copy.jpg": "duplicate",
    }
    train, val = list_images([tmp_path / "a/train.txt"]), list_images([tmp_path / "a/val.txt"])
    good = {p.resolve() for name, p in photos.items() if name.startswith("good")}
    assert {p.resolve() for p in train} | {p.resolve() for p in val} == good and not set(train) & set(val)

    assert prepare_main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert prepare_main([*argv, "--out", str(tmp_path / "c"), "--seed", "1"]) == 0
    manifest = {out: (tmp_path / out / "val.txt").read_text() for out in "abc"}
    assert manifest["a"] == manifest["b"] != manifest["c"]

    cfg = DataConfig(train=[str(tmp_path / "a/train.txt")], val=[str(tmp_path / "a/val.txt")], size=32)
    train_set, val_set = build_datasets(cfg)
    assert (len(train_set), len(val_set)) == (7, 3) and val_set[0].shape == (3, 32, 32)


def test_prepare_writes_resized_copies_that_the_manifests_point_at(make_image, tmp_path):
    for i in range(4):
        make_image(f"src/big{i}.png", size=(120 + i, 90), seed=i)
    make_image("src/gray.png", mode="L", size=(100, 100))
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), str(tmp_path / "src"), "--out", str(out), "--resize", "48"]
    result = subprocess.run([*command, "--workers", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "kept 4: train 3" in result.stdout and "grayscale 1" in result.stdout
    copies = list_images([out / "train.txt", out / "val.txt"])
    assert sorted(copies) == sorted(list_images([out / "images"])) and len(copies) == 4
    assert all(line.startswith("images/") for line in (out / "train.txt").read_text().splitlines())
    for copy in copies:
        with Image.open(copy) as img:
            assert img.format == "JPEG" and min(img.size) == 48 and max(img.size) in range(64, 67)


def test_prepare_reports_when_too_few_photos_survive(prepare_main, make_image, tmp_path, capsys):
    make_image("src/gray.png", mode="L")
    make_image("src/good.png")
    out = tmp_path / "out"
    assert run_cli(lambda: prepare_main([str(tmp_path / "src"), "--out", str(out), "--workers", "1"])) == 2
    assert "only 1 readable image" in capsys.readouterr().err
    assert read_report(out) == {"gray.png": "grayscale"}
