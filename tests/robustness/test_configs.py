"""Bad configs through ``train.py``: exit code 2, one line naming the key and the file, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from pix2color.commands import train
from tests.robustness.conftest import assert_one_error_line, write_photos

# name -> (YAML text, what the one line must name besides the file)
BAD_YAML = {
    "unknown key": ("train:\n  batch_sise: 8\n", ["train.batch_sise"]),
    "unknown section": ("trian:\n  batch_size: 8\n", ["trian"]),
    "wrong type": ("train:\n  batch_size: eight\n", ["train.batch_size", "eight"]),
    "section not a mapping": ("train: 8\n", ["train"]),
    "YAML syntax error": ("train:\n  batch_size: [8\n", ["YAML syntax error", "line"]),
    "unknown encoder": ("model:\n  encoder: resnet9000\n", ["model.encoder", "resnet9000", "resnet18"]),
    "learning rate 0": ("stage1:\n  lr: 0\n", ["stage1.lr=0"]),
    "negative learning rate": ("stage2:\n  lr: -2.0e-4\n", ["stage2.lr=-0.0002"]),
    "size not a multiple of 32": ("data:\n  size: 100\n", ["data.size=100", "96", "128"]),
}
# name -> (--set override, what the one line must name besides --set)
BAD_OVERRIDES = {
    "unknown key": ("train.batch_sise=8", ["train.batch_sise"]),
    "wrong type": ("train.batch_size=eight", ["train.batch_size", "eight"]),
    "unknown encoder": ("model.encoder=resnet9000", ["model.encoder", "resnet9000"]),
    "learning rate 0": ("stage1.lr=0", ["stage1.lr=0"]),
    "size not a multiple of 32": ("data.size=100", ["data.size=100"]),
    "not key=value": ("train.batch_size", ["train.batch_size"]),
}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    write_photos(tmp_path / "photos", 2)
    return tmp_path / "photos"


def run_train(argv: list[str], capsys) -> tuple[int, str]:
    code = train.main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("text", "needles"), BAD_YAML.values(), ids=BAD_YAML.keys())
def test_bad_config_file_is_one_line_naming_key_and_file(tmp_path, photos, capsys, text, needles):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    out = tmp_path / "run"
    code, err = run_train(["--config", str(config), "--data", str(photos), "--out", str(out)], capsys)
    assert code == 2
    assert_one_error_line(err, str(config), *needles)
    assert config.read_text() == text
    assert not out.exists()


@pytest.mark.parametrize(("override", "needles"), BAD_OVERRIDES.values(), ids=BAD_OVERRIDES.keys())
def test_bad_override_is_one_line_naming_key_and_set(tmp_path, photos, capsys, override, needles):
    out = tmp_path / "run"
    code, err = run_train(["--data", str(photos), "--out", str(out), "--set", override], capsys)
    assert code == 2
    assert_one_error_line(err, "--set", *needles)
    assert not out.exists()


def test_missing_config_file_is_one_line_naming_it(tmp_path, photos, capsys):
    missing = tmp_path / "no_such.yaml"
    code, err = run_train(["--config", str(missing), "--data", str(photos), "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert_one_error_line(err, str(missing), "does not exist")
    assert not (tmp_path / "run").exists()


def test_binary_config_file_is_one_line_naming_it(tmp_path, photos, capsys):
    config = tmp_path / "photo.yaml"
    config.write_bytes(b"\xff\xd8\xff\xe0 not yaml \x00\x81")
    code, err = run_train(["--config", str(config), "--data", str(photos), "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert_one_error_line(err, str(config))
