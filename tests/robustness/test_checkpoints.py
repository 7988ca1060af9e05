"""Hostile and broken checkpoints through infer.py, evaluate.py and train.py --resume.

Each is refused with exit code 2 and one line naming the checkpoint; code pickled into a checkpoint never runs;
the checkpoint itself is left as it was and no output is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from pix2color.commands import infer, train
from tests.robustness.conftest import (
    assert_one_error_line,
    load_script,
    write_checkpoint,
    write_malicious_checkpoint,
    write_photos,
)


@pytest.fixture(scope="module")
def resnet34_weights_under_resnet18_config(tmp_path_factory) -> Iterator[Path]:
    path = write_checkpoint(tmp_path_factory.mktemp("ckpt") / "resnet34_as_18.pt", "resnet34", "resnet18")
    yield path
    path.unlink()


def malicious(tmp_path: Path, tiny_checkpoint: Path, other: Path) -> tuple[Path, list[str]]:
    path = write_malicious_checkpoint(tmp_path / "evil.pt", tmp_path / "code_ran")
    return path, ["refused", "not loaded"]


def other_architecture(tmp_path: Path, tiny_checkpoint: Path, other: Path) -> tuple[Path, list[str]]:
    return other, ["do not fit", "another model config"]


def hand_edited_config(tmp_path: Path, tiny_checkpoint: Path, other: Path) -> tuple[Path, list[str]]:
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["config"]["model"]["encoder"] = "resnet9000"
    path = tmp_path / "edited.pt"
    torch.save(state, path)
    return path, ["model.encoder", "resnet9000"]


def truncated(tmp_path: Path, tiny_checkpoint: Path, other: Path) -> tuple[Path, list[str]]:
    data = tiny_checkpoint.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    return path, ["truncated"]


def zero_byte(tmp_path: Path, tiny_checkpoint: Path, other: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    return path, ["truncated"]


def missing(tmp_path: Path, tiny_checkpoint: Path, other: Path) -> tuple[Path, list[str]]:
    return tmp_path / "no_such.pt", []  # infer/evaluate say "does not exist", --resume "no checkpoints/... there"


BAD_CHECKPOINTS = [malicious, other_architecture, hand_edited_config, truncated, zero_byte, missing]


def run_infer(checkpoint: Path, photos: Path, out: Path) -> int:
    return infer.main([str(photos), "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu"])


def run_evaluate(checkpoint: Path, photos: Path, out: Path) -> int:
    argv = ["--data", str(photos), "--checkpoint", str(checkpoint), "--out", str(out)]
    return load_script("evaluate").main([*argv, "--size", "64", "--workers", "0", "--device", "cpu"])


def run_resume(checkpoint: Path, photos: Path, out: Path) -> int:
    """--resume takes its data from the checkpoint, so ``photos`` is not passed."""
    return train.main(["--resume", str(checkpoint), "--out", str(out), "--stage", "pretrain"])


ENTRY_POINTS: dict[str, Callable[[Path, Path, Path], int]] = {
    "infer.py": run_infer,
    "evaluate.py": run_evaluate,
    "train.py --resume": run_resume,
}


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def written_outputs(out: Path) -> list[Path]:
    """Images, reports and checkpoints under ``out`` (a run's config.yaml and TensorBoard folder do not count)."""
    kinds = {".png", ".jpg", ".json", ".csv", ".md", ".pt"}
    return [p for p in out.rglob("*") if p.suffix in kinds] if out.exists() else []


@pytest.mark.parametrize("run_entry_point", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
@pytest.mark.parametrize("make_checkpoint", BAD_CHECKPOINTS)
def test_bad_checkpoint_is_refused_with_one_line(
    tmp_path, capsys, tiny_checkpoint, resnet34_weights_under_resnet18_config, make_checkpoint, run_entry_point
):
    photos = tmp_path / "photos"
    write_photos(photos, 3)
    checkpoint, needles = make_checkpoint(tmp_path, tiny_checkpoint, resnet34_weights_under_resnet18_config)
    before = digest(checkpoint)
    out = tmp_path / "out"
    code = run_entry_point(checkpoint, photos, out)
    assert code == 2
    assert_one_error_line(capsys.readouterr().err, str(checkpoint), *needles)
    assert not (tmp_path / "code_ran").exists()
    assert digest(checkpoint) == before
    assert written_outputs(out) == []


def test_the_malicious_checkpoint_really_runs_code_when_unpickled_unsafely(tmp_path):
    """The control for the refusals above: the payload is live."""
    path = write_malicious_checkpoint(tmp_path / "evil.pt", tmp_path / "code_ran")
    torch.load(path, weights_only=False)
    assert (tmp_path / "code_ran").exists()


def test_a_good_checkpoint_passes_the_same_entry_points(tmp_path, capsys, tiny_checkpoint):
    """The control for the refusals above: the tiny checkpoint itself is accepted by inference."""
    photos = tmp_path / "photos"
    write_photos(photos, 2)
    assert run_infer(tiny_checkpoint, photos, tmp_path / "out") == 0, capsys.readouterr().err
    assert len(written_outputs(tmp_path / "out")) == 2
