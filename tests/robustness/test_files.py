"""Nasty image files through every reader: the dataset, prepare_data.py, infer.py, evaluate.py, compare.py.

Unreadable files are reported (naming the file) and skipped; odd but valid files decode to RGB; entries that
are not files (a folder or a FIFO named .jpg, symlink loops) are never listed, never opened, never a hang.
Nothing the user gave is modified.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from pix2color.commands import infer
from pix2color.commands.common import run_cli
from pix2color.config import DataConfig
from pix2color.data import ImageDataset, build_datasets, list_images
from pix2color.errors import DataError
from tests.robustness.conftest import (
    DECODABLE,
    HEADER_UNREADABLE,
    NOT_FILES,
    UNREADABLE,
    can_read,
    load_script,
    make_fifo_named_jpg,
    make_nasty_folder,
    make_no_read_permission,
    message_lines,
    snapshot,
    write_photos,
)

SIZE = 64


def warned_about(caught: list[warnings.WarningMessage], path: Path) -> bool:
    return any(str(path) in str(w.message) for w in caught)


# --- pix2color.data ----------------------------------------------------------------------------------------------


def test_list_images_lists_each_image_once_and_nothing_that_is_not_a_file(nasty_folder, fifo_guard):
    opened = fifo_guard(nasty_folder.root / "pipe.jpg")
    listed = list_images([nasty_folder.root])
    expected = nasty_folder.good + nasty_folder.unreadable + nasty_folder.decodable
    assert sorted(listed) == sorted(expected)
    assert not opened, "list_images opened a FIFO"


@pytest.mark.parametrize("make", NOT_FILES.values(), ids=NOT_FILES.keys())
def test_list_images_of_a_folder_holding_only_a_non_file_names_the_folder(tmp_path, make, fifo_guard):
    folder = tmp_path / "photos"
    folder.mkdir()
    entry = make(folder)
    opened = fifo_guard(entry) if entry.name == "pipe.jpg" else []
    with pytest.raises(DataError, match=f"{re.escape(str(folder))} holds no images"):
        list_images([folder])
    assert not opened


def test_list_images_of_a_folder_with_no_images_names_the_folder(tmp_path):
    folder = tmp_path / "empty"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("no photos here\n")
    with pytest.raises(DataError, match=f"{re.escape(str(folder))} holds no images"):
        list_images([folder])


@pytest.mark.parametrize("train", [True, False], ids=["train", "val"])
@pytest.mark.parametrize("make", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_dataset_gives_none_and_a_warning_naming_an_unreadable_file(tmp_path, make, train):
    path = make(tmp_path)
    before = path.read_bytes()
    with pytest.warns(UserWarning, match=re.escape(str(path))):
        item = ImageDataset([path], SIZE, train=train)[0]
    assert item is None
    assert path.read_bytes() == before


@pytest.mark.parametrize("train", [True, False], ids=["train", "val"])
@pytest.mark.parametrize("make", DECODABLE.values(), ids=DECODABLE.keys())
def test_dataset_decodes_odd_but_valid_files_to_rgb(tmp_path, make, train):
    path = make(tmp_path)
    before = path.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        item = ImageDataset([path], SIZE, train=train)[0]
    assert item is not None and item.dtype == torch.uint8 and item.shape == (3, SIZE, SIZE)
    assert not warned_about(caught, path)
    assert path.read_bytes() == before


def test_bomb_is_refused_as_a_decompression_bomb(tmp_path):
    path = UNREADABLE["20000x20000 bomb"](tmp_path)
    with pytest.warns(UserWarning, match="decompression bomb"):
        assert ImageDataset([path], SIZE, train=False)[0] is None


def mean_rgb(item: torch.Tensor) -> list[float]:
    return item.float().mean(dim=(1, 2)).tolist()


@pytest.mark.parametrize(
    ("make", "check"),
    [
        (DECODABLE["CMYK JPEG"], lambda item: mean_rgb(item)[0] > 200 and max(mean_rgb(item)[1:]) < 60),
        (DECODABLE["16-bit PNG"], lambda item: all(120 <= v <= 136 for v in mean_rgb(item))),  # 32768 -> 128
        (DECODABLE["LA"], lambda item: torch.equal(item[0], item[1]) and torch.equal(item[1], item[2])),
        (DECODABLE["EXIF-rotated"], lambda item: mean_rgb(item[:, :8])[0] > 150 and mean_rgb(item[:, -8:])[2] > 150),
    ],
    ids=["CMYK is not inverted", "16-bit is scaled not clipped", "LA stays gray", "EXIF rotation applied"],
)
def test_decoded_pixels_are_right(tmp_path, make, check):
    item = ImageDataset([make(tmp_path)], SIZE, train=False)[0]
    assert check(item), mean_rgb(item)


def test_unreadable_permission_is_skipped_or_read_when_the_user_can_read_anyway(tmp_path):
    """chmod 000: an ordinary user gets a warning and a skip; root (as in CI containers) reads the file."""
    path = make_no_read_permission(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        item = ImageDataset([path], SIZE, train=False)[0]
    if can_read(path):
        assert item is not None and item.shape == (3, SIZE, SIZE)
    else:
        assert item is None and warned_about(caught, path)


def test_build_datasets_drops_unreadable_files_and_warns_about_each(tmp_path):
    nasty = make_nasty_folder(tmp_path / "photos", good_photos=16)
    cfg = DataConfig(train=[str(nasty.root)], size=SIZE, max_bad_fraction=0.3, val_fraction=0.2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, val = build_datasets(cfg)
    kept = set(train.files) | set(val.files)
    for path in [p for p in nasty.unreadable if p.name != "truncated.jpg"]:
        assert path not in kept and warned_about(caught, path)
    assert set(nasty.good + nasty.decodable) <= kept


def test_build_datasets_refuses_a_folder_of_mostly_unreadable_files(tmp_path):
    folder = tmp_path / "photos"
    write_photos(folder, 2)
    bad = [make(folder) for make in HEADER_UNREADABLE.values()]
    with pytest.warns(UserWarning), pytest.raises(DataError, match=r"4 of 6 images in data\.train are unreadable"):
        build_datasets(DataConfig(train=[str(folder)], size=SIZE))
    assert all(path.exists() for path in bad)


def test_build_datasets_names_an_empty_val_folder(tmp_path):
    write_photos(tmp_path / "train", 4)
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "val"))):
        build_datasets(DataConfig(train=[str(tmp_path / "train")], val=[str(tmp_path / "val")], size=SIZE))


# --- scripts/prepare_data.py -------------------------------------------------------------------------------------


def read_report(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return {row["file"]: row["reason"] for row in csv.DictReader(handle, delimiter="\t")}


def test_prepare_data_reports_unreadable_files_and_keeps_the_rest(nasty_folder, tmp_path, capsys, fifo_guard):
    opened = fifo_guard(nasty_folder.root / "pipe.jpg")
    before = nasty_folder.snapshot()
    out = tmp_path / "clean"
    prepare_data = load_script("prepare_data")
    argv = [str(nasty_folder.root), "--out", str(out), "--workers", "1", "--min-size", "16", "--min-chroma", "4"]
    code = run_cli(lambda: prepare_data.main(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    total = len(nasty_folder.good) + len(nasty_folder.unreadable) + len(nasty_folder.decodable)
    assert f"scanned {total} images" in captured.out
    report = read_report(out / "report.tsv")
    for path in nasty_folder.unreadable:
        assert report.get(str(path)) == "unreadable", path
    assert report.get(str(nasty_folder.root / "one_pixel.png")) == "too_small"
    kept = {path.resolve() for path in list_images([out / "train.txt", out / "val.txt"])}  # manifests are relative
    assert {path.resolve() for path in nasty_folder.good} <= kept
    for path in nasty_folder.decodable:
        assert (path.resolve() in kept) != (report.get(str(path)) in ("too_small", "grayscale")), path
    assert nasty_folder.snapshot() == before
    assert not opened


def test_prepare_data_of_a_folder_with_no_images_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    prepare_data = load_script("prepare_data")
    code = run_cli(lambda: prepare_data.main([str(tmp_path / "empty"), "--out", str(tmp_path / "clean")]))
    assert code == 2
    lines = message_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(tmp_path / "empty") in lines[0]


# --- infer.py ----------------------------------------------------------------------------------------------------


def test_infer_colorizes_good_files_reports_each_bad_one_and_exits_1(nasty_folder, tmp_path, tiny_checkpoint, capsys):
    before = nasty_folder.snapshot()
    out = tmp_path / "colorized"
    argv = [str(nasty_folder.root), "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--device", "cpu"]
    code = infer.main(argv)
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "Traceback" not in captured.err
    failures = [line for line in message_lines(captured.err) if line.startswith("failed: ")]
    assert len(failures) == len(nasty_folder.unreadable), failures
    for path in nasty_folder.unreadable:
        assert sum(str(path) in line for line in failures) == 1, path
    done = nasty_folder.good + nasty_folder.decodable
    for path in done:
        assert (out / path.relative_to(nasty_folder.root)).with_suffix(".png").is_file(), path
    with Image.open(out / "exif_rotated.png") as rotated:
        assert rotated.size == (32, 48)  # the orientation was applied: stored 48x32
    assert f"{len(done)} colorized, 0 skipped" in captured.out
    assert f"{len(nasty_folder.unreadable)} failed" in captured.out
    assert nasty_folder.snapshot() == before

    outputs = snapshot(out)
    assert infer.main(argv) == 1  # a second run skips what exists and clobbers nothing
    assert f"0 colorized, {len(done)} skipped" in capsys.readouterr().out
    assert snapshot(out) == outputs


def test_infer_on_a_folder_with_no_images_is_one_line(tmp_path, tiny_checkpoint, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    make_fifo_named_jpg(folder)
    code = infer.main([str(folder), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "out")])
    assert code == 2
    lines = message_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(folder) in lines[0], lines
    assert not (tmp_path / "out").exists()


# --- scripts/evaluate.py and scripts/compare.py ------------------------------------------------------------------


def run_cleanly(main, argv: list[str], capsys) -> tuple[list[warnings.WarningMessage], str]:
    """Run a script's ``main``; assert exit 0 and no traceback; return the warnings it raised and its stdout."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    return caught, captured.out


def test_evaluate_skips_and_names_unreadable_files(nasty_folder, tmp_path, tiny_checkpoint, capsys):
    before = nasty_folder.snapshot()
    evaluate = load_script("evaluate")
    out = tmp_path / "eval"
    argv = ["--data", str(nasty_folder.root), "--checkpoint", str(tiny_checkpoint), "--out", str(out)]
    argv += ["--size", str(SIZE), "--workers", "0", "--device", "cpu"]
    caught, _ = run_cleanly(evaluate.main, argv, capsys)
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["unreadable"]) == sorted(str(p) for p in nasty_folder.unreadable)
    assert summary["images"] == len(nasty_folder.good) + len(nasty_folder.decodable)
    for path in nasty_folder.unreadable:
        assert warned_about(caught, path), path
    assert nasty_folder.snapshot() == before


def test_compare_draws_the_readable_images_and_names_unreadable_ones(nasty_folder, tmp_path, tiny_checkpoint, capsys):
    before = nasty_folder.snapshot()
    load_script("evaluate")  # compare.py imports its sibling as `evaluate`
    compare = load_script("compare")
    grid = tmp_path / "grid.png"
    argv = ["--images", str(nasty_folder.root), "--checkpoint", str(tiny_checkpoint), "--out", str(grid)]
    argv += ["--size", str(SIZE), "--workers", "0", "--device", "cpu", "--limit", "0", "--metrics", "--html"]
    caught, stdout = run_cleanly(compare.main, argv, capsys)
    readable = len(nasty_folder.good) + len(nasty_folder.decodable)
    assert f"{readable} images x " in stdout
    assert grid.is_file() and grid.with_suffix(".html").is_file()
    for path in nasty_folder.unreadable:
        assert warned_about(caught, path), path
    assert nasty_folder.snapshot() == before
