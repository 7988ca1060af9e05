"""The training loop end to end on 16 tiny images: runs both stages, logs, resumes exactly, stops cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.checkpoint import RESUME_KEYS, load_checkpoint
from pix2color.commands.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "data.size=64",
    "data.val_fraction=0.25",
    "data.workers=0",
    "data.grid_images=3",
    "model.pretrained=none",
    "train.batch_size=4",
    "train.log_every_steps=1",
    "train.deterministic=true",
    "stage1.epochs=2",
    "stage2.epochs=1",
]


HINTED = ("model.hints=true", "disc.hints=true")  # a generator and a D that read hints


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """16 small colour JPEGs with smooth random gradients (so colour is learnable from lightness)."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(16):
        base = rng.integers(0, 256, size=(2, 2, 3)).astype(np.uint8)
        Image.fromarray(base).resize((80, 72), Image.BILINEAR).save(folder / f"photo_{i:02d}.jpg", quality=95)
    return folder


def train(photos: Path, out: Path, *extra: str) -> int:
    return train_main(["--data", str(photos), "--out", str(out), "--set", *TINY, *extra])


def crop_sizes(run: Path) -> list[int]:
    """The training crop size of each stage-1 step, from the run's TensorBoard log (one per step with TINY)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0}).Reload().Scalars("pretrain/crop_size")
    return [int(event.value) for event in sorted(events, key=lambda event: event.step)]


@pytest.fixture(scope="module")
def straight_run(photos, tmp_path_factory) -> Iterator[Path]:
    """One uninterrupted two-stage run of a model that takes hints, shared by the tests that read its logs or
    compare against it (so the exact resume covers the hints drawn in training)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert train(photos, run, *HINTED) == 0
    yield run
    shutil.rmtree(run)  # 1 GB of checkpoints, otherwise kept until the session ends


def test_two_stage_run_writes_checkpoints_grids_config_and_tensorboard(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(photos, run, "train.ema_decay=0.9") == 0
    printed = capsys.readouterr().out
    assert "tensorboard --logdir" in printed and "gan final val: psnr" in printed
    for stage in ("pretrain", "gan"):
        last = load_checkpoint(run / "checkpoints" / stage / "last.pt")
        best = load_checkpoint(run / "checkpoints" / stage / "best.pt")
        assert last["stage"] == best["stage"] == stage and {"generator_ema", *RESUME_KEYS} <= set(last)
        # best.pt: the EMA generator, the config, the metrics that made it best and its step, the format version
        assert set(best) == {"format_version", "config", "stage", "stage_title", "generator", "metrics", "step"}
        for key, weight in last["generator_ema"].items():
            assert torch.equal(best["generator"][key], weight), key
        metric = "psnr" if stage == "pretrain" else "color_fidelity"  # train.best_metric, stage2.best_metric
        assert best["metrics"][metric] == last["best"]
    last_gan = load_checkpoint(run / "checkpoints" / "gan" / "last.pt")
    assert "discriminator" in last_gan and last_gan["config"]["data"]["size"] == 64
    best_size = (run / "checkpoints" / "gan" / "best.pt").stat().st_size
    assert best_size <= (run / "checkpoints" / "gan" / "last.pt").stat().st_size / 3
    assert (run / "config.yaml").is_file()
    assert sorted(p.name for p in (run / "grids").iterdir()) == [
        "gan_epoch_1.png",
        "gan_start.png",  # stage 2's starting weights: the reference of its color_fidelity score
        "pretrain_epoch_1.png",
        "pretrain_epoch_2.png",
    ]
    grid = Image.open(run / "grids" / "gan_epoch_1.png")
    assert grid.width > 3 * 64 and grid.height > 3 * 64
    weights_only = run / "weights_only.pt"
    last_pretrain = load_checkpoint(run / "checkpoints" / "pretrain" / "last.pt")  # stage 2 still to run
    torch.save({key: value for key, value in last_pretrain.items() if key not in RESUME_KEYS}, weights_only)
    capsys.readouterr()
    assert train_main(["--resume", str(weights_only), "--out", str(tmp_path / "resumed")]) == 2
    assert f"--resume {weights_only} holds generator weights only" in capsys.readouterr().err
    best = run / "checkpoints" / "gan" / "best.pt"
    assert train_main(["--resume", str(best)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "pass the run folder or its checkpoints/gan/last.pt" in errors[0], errors


def test_tensorboard_events_hold_losses_val_metrics_and_grids(straight_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(straight_run / "tb"), size_guidance={"scalars": 0, "images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    expected = {
        "pretrain/loss_l1",
        "pretrain/grad_norm_g",
        "pretrain/lr_g_decoder",
        "pretrain/images_per_s",
        "pretrain_val/psnr",
        "pretrain_val/colorfulness",
        "gan/loss_d",
        "gan/loss_g_gan",
        "gan/loss_l1",
        "gan/d_real",
        "gan/d_fake",
        "gan/lr_d",
        "gan/gan_weight",
        "gan_val/psnr",
        "gan_val/colorfulness",
        "gan_val/delta_cf",
        "gan_val/psnr_gray",
        "gan_val/color_fidelity",
        "gan/epoch_seconds",
        "pretrain_val/psnr_10_hints",  # a model that takes hints is validated with 10 as well
        "gan_val/ciede2000_10_hints",
    }
    assert expected <= scalars, expected - scalars
    start, *epochs = events.Scalars("gan_val/psnr")  # the start (step 0), then each epoch's
    assert start.step == 0 and len(epochs) == 1 and epochs[0].step > 0
    assert {"pretrain/grid", "gan/grid"} <= set(events.Tags()["images"])
    psnr = [event.value for event in events.Scalars("gan_val/psnr")]
    assert all(0 < value < 100 for value in psnr)


def test_custom_scalars_draw_d_real_with_d_fake_and_val_color_with_fidelity(straight_run):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.custom_scalar import layout_pb2

    layout = layout_pb2.Layout()
    for events in (straight_run / "tb").glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.tag == "custom_scalars__config__":
                    layout.ParseFromString(value.tensor.string_val[0])
    charts = {category.title: [list(chart.multiline.tag) for chart in category.chart] for category in layout.category}
    assert ["gan/d_real", "gan/d_fake"] in charts["gan"]
    assert ["gan_val/psnr", "gan_val/colorfulness", "gan_val/delta_cf", "gan_val/ciede2000"] in charts["gan"]
    assert ["pretrain_val/psnr", "pretrain_val/colorfulness", "pretrain_val/delta_cf", "pretrain_val/ciede2000"] in (
        charts["pretrain"]
    )


def test_progressive_resizing_trains_stage1_on_small_crops_then_switches_mid_epoch(photos, tmp_path, capsys):
    run = tmp_path / "run"
    extra = ["stage1.small_size=32", "stage1.small_share=0.25"]  # 2 epochs of 3 steps: the switch is at step 2
    assert train(photos, run, *extra, "--stage", "pretrain") == 0
    assert "pretrain 1 at 32 px" in capsys.readouterr().err
    assert crop_sizes(run) == [32, 32, 64, 64, 64, 64]
    assert load_checkpoint(run / "checkpoints" / "pretrain" / "last.pt")["step"] == 6  # no batch lost at the switch


def test_best_pt_is_not_taken_from_weights_still_on_small_crops(photos, tmp_path):
    run = tmp_path / "run"
    extra = ["stage1.small_size=32", "stage1.small_share=0.5", "stage1.epochs=3"]  # epoch 1 small, 2 switches
    assert train(photos, run, *extra, "--stage", "pretrain") == 0
    assert load_checkpoint(run / "checkpoints" / "pretrain" / "best.pt")["step"] > 3


def test_a_resume_at_an_epochs_end_on_small_crops_keeps_those_weights_out_of_best_pt(photos, tmp_path, monkeypatch):
    """Interrupted after epoch 1's last step, the resumed run validates epoch 1 before any step of its own."""
    run = tmp_path / "run"
    extra = ["stage1.small_size=32", "stage1.small_share=0.5", "stage1.epochs=3"]  # epoch 1 small, 2 switches
    with monkeypatch.context() as patch:
        _interrupt_at(patch, "pretrain", 3)
        assert train(photos, run, *extra, "--stage", "pretrain") == 0
    assert train_main(["--resume", str(run)]) == 0
    assert load_checkpoint(run / "checkpoints" / "pretrain" / "best.pt")["step"] > 3
    assert crop_sizes(run) == [32] * 5 + [64] * 4  # the resume keeps the sizes


@pytest.mark.parametrize("epochs_psnr_shift", [-10.0, 10.0])
def test_stage2_best_pt_is_its_starting_weights_until_an_epoch_beats_them(
    photos, tmp_path, monkeypatch, capsys, tiny_checkpoint, epochs_psnr_shift
):
    """Stage 2's epochs are made to score far below (or above) its start: best.pt keeps the start (or not)."""
    from pix2color.training.loop import Loop

    measure = Loop.measure

    def shifted(loop, when: str) -> dict[str, float]:
        summary = measure(loop, when)
        return summary if when == "start" else summary | {"psnr": summary["psnr"] + epochs_psnr_shift}

    monkeypatch.setattr(Loop, "measure", shifted)
    run = tmp_path / "run"
    assert train(photos, run, f"stage2.init_from={tiny_checkpoint}", "--stage", "gan") == 0
    best = load_checkpoint(run / "checkpoints" / "gan" / "best.pt")
    start = load_checkpoint(tiny_checkpoint)["generator"]
    kept_start = epochs_psnr_shift < 0
    assert best.get("from_start", False) is kept_start
    assert (best["step"] == 0) is kept_start
    assert all(torch.equal(best["generator"][key], start[key]) for key in start) is kept_start
    printed = capsys.readouterr().out.splitlines()
    start_line = next(line for line in printed if line.startswith("gan best.pt: the weights it starts from, until"))
    assert start_line.endswith(f"color_fidelity {best['metrics']['color_fidelity']:.4f}") is kept_start


def test_resuming_a_finished_run_says_so_and_writes_nothing(straight_run, capsys):
    before = {path: path.stat().st_mtime_ns for path in straight_run.rglob("*")}
    assert train_main(["--resume", str(straight_run)]) == 0
    assert "is the end of a finished run (gan epoch 1 of 1); nothing to resume" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in straight_run.rglob("*")} == before


def _interrupt_at(monkeypatch, stage: str, step: int) -> None:
    """Send this process SIGINT right after ``step`` of ``stage``, as a user pressing Ctrl-C would."""
    from pix2color.training.loop import Loop

    original = Loop.after_step

    def patched(self, bar):
        if (self.stage.name, self.pos.step) == (stage, step):
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, bar)

    monkeypatch.setattr(Loop, "after_step", patched)


@pytest.mark.parametrize("stage,step", [("pretrain", 3), ("gan", 2)])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(
    photos, straight_run, tmp_path, monkeypatch, capsys, stage, step
):
    cut = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, stage, step)
        assert train(photos, cut, *HINTED) == 0
    assert f"resume with: pix2color-train --resume {cut}" in capsys.readouterr().out
    interrupted = load_checkpoint(cut / "checkpoints" / stage / "last.pt")
    assert interrupted["step"] == step
    assert not (cut / "checkpoints" / "gan").exists() or stage == "gan"

    assert train_main(["--resume", str(cut)]) == 0
    expected = load_checkpoint(straight_run / "checkpoints" / "gan" / "last.pt")
    resumed = load_checkpoint(cut / "checkpoints" / "gan" / "last.pt")
    assert resumed["step"] == expected["step"]
    # Same data order, crops, learning rates and optimizer state: equal up to float rounding order.
    for key, weight in expected["generator"].items():
        torch.testing.assert_close(resumed["generator"][key], weight, rtol=0, atol=1e-6, msg=key)


def test_nan_loss_stops_with_one_line_naming_step_and_loss_and_keeps_last_checkpoint(
    photos, tmp_path, monkeypatch, capsys
):
    from pix2color import losses

    real_l1, calls = losses.l1_chroma, []

    def l1_turning_nan_at_step_3(pred, target):
        calls.append(1)
        return real_l1(pred, target) * (float("nan") if len(calls) == 3 else 1.0)

    monkeypatch.setattr(losses, "l1_chroma", l1_turning_nan_at_step_3)  # stage 1's L1ChromaLoss calls it
    assert train(photos, tmp_path / "run", "train.save_every_steps=2") == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith("error: pretrain step 3: loss_l1 is nan")
    assert "still holds the last good weights" in errors[0]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "pretrain" / "last.pt")["step"] == 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_torchrun_two_process_ddp_on_cpu(photos, tmp_path):
    """Pinned to the CPU (so gloo, even on a GPU host) on a port that is free now."""
    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}"]
    command += [str(REPO / "train.py"), "--data", str(photos), "--out", str(run), "--set", *TINY]
    command += ["stage1.epochs=1", "train.device=cpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    state = load_checkpoint(run / "checkpoints" / "gan" / "last.pt")
    # 12 training images, 2 ranks, batch 4 per rank: one step per epoch, globally 8 images.
    assert state["step"] == 1
    assert done.stdout.count("gan final val") == 1  # only rank 0 prints


def test_compiled_training_follows_eager_and_saves_plain_weights(photos, tmp_path):
    """torch.compile changes the numerics a little, so: the same update within a quarter of its own size.

    Both paths in fp32 (train.amp=false): bf16 autocast, native on some CPUs only, would make the gap
    depend on the machine.
    """
    runs = {"eager": [], "compiled": ["train.compile=true"], "untrained": ["stage1.lr=1e-12"]}
    weights = {}
    for name, extra in runs.items():
        assert train(photos, tmp_path / name, "stage1.epochs=1", "train.amp=false", *extra, "--stage", "pretrain") == 0
        weights[name] = load_checkpoint(tmp_path / name / "checkpoints" / "pretrain" / "last.pt")["generator"]
    eager, compiled, untrained = weights["eager"], weights["compiled"], weights["untrained"]
    assert compiled.keys() == eager.keys()  # no torch.compile wrapper prefix: loads anywhere
    moved = [name for name, tensor in eager.items() if not torch.equal(tensor, untrained[name])]
    assert len(moved) > len(eager) // 2
    for name in moved:
        update = (eager[name] - untrained[name]).float().norm()
        assert (compiled[name] - eager[name]).float().norm() < 0.25 * update, name


def test_time_budgeted_run_interrupted_and_resumed_spends_its_budget_once(photos, tmp_path, monkeypatch, capsys):
    """train.minutes=0.2 gives each stage 6 s; epochs only cap it. Fewer steps than log_every_steps still log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    budget = ["train.minutes=0.2", "stage1.epochs=100", "stage2.epochs=100", "train.log_every_steps=100000"]
    cut = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, "pretrain", 2)
        assert train(photos, cut, *budget) == 0
    interrupted = load_checkpoint(cut / "checkpoints" / "pretrain" / "last.pt")
    assert interrupted["step"] == 2 and interrupted["spent_seconds"] > 0 and not interrupted["finished"]
    capsys.readouterr()

    assert train_main(["--resume", str(cut)]) == 0
    assert "pretrain epoch" in capsys.readouterr().out
    pretrain, gan = (load_checkpoint(cut / "checkpoints" / stage / "last.pt") for stage in ("pretrain", "gan"))
    for final in (pretrain, gan):
        assert final["finished"] and final["epoch"] < 100
        assert final["spent_seconds"] >= 6.0  # the time before the interruption counts: the budget is spent once
    assert pretrain["spent_seconds"] > interrupted["spent_seconds"] and pretrain["step"] > 2
    scalars = set(EventAccumulator(str(cut / "tb")).Reload().Tags()["scalars"])
    assert {"pretrain/loss_l1", "pretrain/lr_g_decoder", "gan/loss_d", "gan/lr_d"} <= scalars
    assert train_main(["--resume", str(cut)]) == 0
    assert "its time budget spent); nothing to resume" in capsys.readouterr().out
