"""Interrupted and failing training runs: SIGKILL, SIGINT, a full disk, a NaN loss, empty or bad data.

Signals go to real ``python train.py`` processes; the rest runs ``pix2color.commands.train.main`` in this process
(the same code path, without paying for the fastai import again). Every run is tiny: 64 px, batch 4, two steps per
epoch on 12 small photos, stage 1 only.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from pix2color import checkpoint, losses
from pix2color.checkpoint import load_checkpoint
from pix2color.commands import train
from pix2color.training.loop import Loop
from tests.robustness.conftest import (
    HEADER_UNREADABLE,
    TINY_TRAINING,
    BackgroundRun,
    assert_one_error_line,
    delete_checkpoints,
    make_nasty_folder,
    make_text_named_jpg,
    make_zero_byte,
    message_lines,
    snapshot,
    train_command,
    write_photos,
)

STEPS_PER_EPOCH = 2  # 12 photos, 2 held out for val, batch 4


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    write_photos(tmp_path / "photos", 12)
    return tmp_path / "photos"


def last_checkpoint(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "pretrain" / "last.pt"


def train_here(capsys, *args: str | Path, overrides: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """train.main with the tiny settings, stage 1 only; returns (exit code, stdout, stderr)."""
    argv = [str(a) for a in args] + ["--stage", "pretrain", "--set", *TINY_TRAINING, *overrides]
    code = train.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def restored_steps(monkeypatch) -> list[int]:
    """The step each resumed run continues from."""
    steps: list[int] = []
    original = Loop.restore

    def restore(self, state):
        original(self, state)
        steps.append(self.pos.step)

    monkeypatch.setattr(Loop, "restore", restore)
    return steps


# --- signals -----------------------------------------------------------------------------------------------------


class Launched(NamedTuple):
    run_dir: Path
    photos: Path
    photos_before: dict[str, str]
    process: BackgroundRun


@pytest.fixture(scope="module")
def background_runs(tmp_path_factory) -> Iterator[dict[str, Launched]]:
    """Real ``python train.py`` runs, all started together to overlap their start-up (mostly imports).

    "SIGKILL" and "SIGINT" get their signal as soon as their last.pt exists; the SIGINT run has two epochs, so a
    signal that lands in the first epoch's validation still stops it. "mostly bad" trains on 2 good photos and
    4 unreadable files.
    """
    plans = {}
    for sig, epochs in ((signal.SIGKILL, 1), (signal.SIGINT, 2)):
        root = tmp_path_factory.mktemp(sig.name)
        write_photos(root / "photos", 12)
        args = ("--data", root / "photos", "--out", root / "run", "--stage", "pretrain")
        overrides = (f"stage1.epochs={epochs}", "train.save_every_steps=1")
        plans[sig.name] = root, train_command(*args, overrides=overrides), last_checkpoint(root / "run"), sig
    root = tmp_path_factory.mktemp("mostly_bad")
    write_photos(root / "photos", 2)
    for make in HEADER_UNREADABLE.values():
        make(root / "photos")
    plans["mostly bad"] = root, train_command("--data", root / "photos", "--out", root / "run"), None, None
    runs = {}
    for name, (root, command, trigger, sig) in plans.items():
        before = snapshot(root / "photos")
        runs[name] = Launched(
            root / "run", root / "photos", before, BackgroundRun(command, root / "logs", trigger, sig)
        )
    yield runs
    for launched in runs.values():  # a test that failed early leaves its process running
        launched.process.stop()
        delete_checkpoints(launched.run_dir)


def test_sigkill_leaves_a_loadable_checkpoint_and_resume_finishes(background_runs, restored_steps, capsys):
    run_dir, photos, photos_before, killed = background_runs["SIGKILL"]
    code, out, err = killed.finish()
    assert killed.signalled and code == -signal.SIGKILL, out + err
    assert snapshot(photos) == photos_before

    last = last_checkpoint(run_dir)
    saved = load_checkpoint(last)  # whatever the kill interrupted, last.pt is whole
    assert saved["step"] >= 1

    assert train.main(["--resume", str(run_dir), "--set", "train.save_every_steps=100"]) == 0
    assert restored_steps == [saved["step"]]  # progress up to the last save was kept
    final = load_checkpoint(last)
    assert (final["epoch"], final["step"]) == (1, STEPS_PER_EPOCH)
    assert "done in" in capsys.readouterr().out


def test_sigint_saves_and_the_printed_resume_command_finishes(background_runs, restored_steps, capsys):
    run_dir, photos, photos_before, interrupted = background_runs["SIGINT"]
    code, out, err = interrupted.finish()
    assert interrupted.signalled and code == 0, out + err
    assert snapshot(photos) == photos_before
    assert "Traceback" not in err
    last = last_checkpoint(run_dir)
    resume = re.search(r"^interrupted: saved (\S+); resume with: (.+)$", out, re.MULTILINE)
    assert resume, out
    assert Path(resume.group(1)) == last
    saved = load_checkpoint(last)
    assert saved["step"] >= 1

    command = shlex.split(resume.group(2))
    assert command[0] == "pix2color-train"  # the console script of pix2color.commands.train:main
    assert train.main(command[1:]) == 0, capsys.readouterr().err
    assert restored_steps == [saved["step"]]
    assert load_checkpoint(last)["epoch"] == 2


# --- faults inside a run -----------------------------------------------------------------------------------------


def test_disk_full_while_saving_keeps_the_previous_checkpoint_and_is_one_line(tmp_path, photos, capsys, monkeypatch):
    real_save = torch.save
    saves: list[int] = []

    def save_until_the_disk_is_full(obj, handle, *args, **kwargs):
        saves.append(1)
        if len(saves) == 1:
            return real_save(obj, handle, *args, **kwargs)
        handle.write(b"the first bytes of a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.torch, "save", save_until_the_disk_is_full)
    run_dir = tmp_path / "run"
    last = last_checkpoint(run_dir)
    code, _, err = train_here(capsys, "--data", photos, "--out", run_dir, overrides=("train.save_every_steps=1",))
    assert code == 2
    assert_one_error_line(err, str(last), "No space left on device", "intact")
    monkeypatch.undo()
    assert load_checkpoint(last)["step"] == 1
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]  # no temp file left behind


def test_nan_loss_stops_with_one_line_naming_step_and_loss(tmp_path, photos, capsys, monkeypatch):
    real_loss = losses.l1_chroma
    calls: list[int] = []

    def nan_on_the_second_step(pred, target):
        calls.append(1)
        loss = real_loss(pred, target)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(losses, "l1_chroma", nan_on_the_second_step)  # stage 1's L1ChromaLoss calls it
    run_dir = tmp_path / "run"
    last = last_checkpoint(run_dir)
    code, _, err = train_here(capsys, "--data", photos, "--out", run_dir, overrides=("train.save_every_steps=1",))
    assert code == 2
    assert_one_error_line(err, "step 2", "loss_l1", "nan", str(last))
    kept = load_checkpoint(last)
    assert kept["step"] == 1
    assert all(torch.isfinite(w).all() for w in kept["generator"].values() if w.is_floating_point())


# --- bad data ----------------------------------------------------------------------------------------------------


def empty_val_folder(tmp_path: Path, photos: Path) -> tuple[list, list[str]]:
    (tmp_path / "empty").mkdir()
    return ["--data", photos, "--set", f"data.val={tmp_path / 'empty'}"], [str(tmp_path / "empty"), "no images"]


def one_photo_and_no_val(tmp_path: Path, photos: Path) -> tuple[list, list[str]]:
    write_photos(tmp_path / "one", 1)
    return ["--data", tmp_path / "one"], ["only 1 readable image", "data.val"]


def val_of_unreadable_files(tmp_path: Path, photos: Path) -> tuple[list, list[str]]:
    for make in (make_zero_byte, make_text_named_jpg):
        make(tmp_path / "broken")
    argv = ["--data", photos, "--set", f"data.val={tmp_path / 'broken'}"]
    return argv, ["2 of 2 images in data.val are unreadable", "data.max_bad_fraction"]


@pytest.mark.parametrize("make_split", [empty_val_folder, one_photo_and_no_val, val_of_unreadable_files])
def test_an_empty_split_stops_before_training_with_one_line(tmp_path, photos, capsys, make_split):
    argv, needles = make_split(tmp_path, photos)
    run_dir = tmp_path / "run"
    code, _, err = train_here(capsys, *argv, "--out", run_dir)
    assert code == 2
    assert_one_error_line(err, *needles)
    assert not (run_dir / "checkpoints").exists()


def test_a_few_bad_files_are_named_and_skipped_and_training_finishes(tmp_path, capsys):
    nasty = make_nasty_folder(tmp_path / "photos", good_photos=12)
    before = nasty.snapshot()
    run_dir = tmp_path / "run"
    overrides = ("data.max_bad_fraction=0.5", "stage1.epochs=1", "train.max_steps_per_epoch=2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = train_here(capsys, "--data", nasty.root, "--out", run_dir, overrides=overrides)
    assert code == 0, err
    assert "Traceback" not in err
    warned = "\n".join(str(w.message) for w in caught)
    for path in [p for p in nasty.unreadable if p.name != "truncated.jpg"]:  # that one is named only when read
        assert str(path) in warned, path
    # a count that covers at least the files dropped before training (the truncated JPEG fails only later)
    counts = [int(n) for n in re.findall(r"skipped (\d+)", out + err)]
    assert any(n >= len(HEADER_UNREADABLE) for n in counts), out + err
    assert load_checkpoint(last_checkpoint(run_dir))["epoch"] == 1
    assert nasty.snapshot() == before


def test_a_folder_of_mostly_bad_files_stops_before_training(background_runs):
    """A real CLI run: what the user sees on stderr is the point."""
    run_dir, folder, before, process = background_runs["mostly bad"]
    code, _, err = process.finish()
    assert code == 2, err
    assert "Traceback" not in err
    lines = message_lines(err)
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "4 of 6 images in data.train" in errors[0], err
    skipped = [line for line in lines if line.startswith("warning: skipping an unreadable image: ")]
    assert len(skipped) == 4 and len(lines) == 5, err  # one line each, no Python file:line: UserWarning
    for path in folder.iterdir():
        if not path.name.startswith("photo_"):
            assert str(path) in err, path
    assert not run_dir.exists()
    assert snapshot(folder) == before
