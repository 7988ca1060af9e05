"""Validation predicts through the Colorizer: TensorBoard's val metrics equal what evaluate.py prints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.checkpoint import load_checkpoint
from pix2color.commands.train import main as train_main
from pix2color.config import load_config
from pix2color.models.generator import build_generator
from pix2color.training.validation import predict, val_colorizer
from tests.robustness.conftest import load_script


def gradients(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (2, 2, 3)).astype(np.uint8)).resize((80, 72)).save(folder / f"{i}.png")
    return folder


def test_val_metrics_in_tensorboard_and_best_pt_equal_evaluate_py_on_the_same_checkpoint(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_dir, val_dir, run = gradients(tmp_path / "train", 8, 0), gradients(tmp_path / "val", 4, 1), tmp_path / "run"
    overrides = ["data.size=64", "data.workers=0", "model.pretrained=none", "train.batch_size=4", "stage1.epochs=1"]
    argv = ["--data", str(train_dir), "--out", str(run), "--stage", "pretrain", "--set", *overrides]
    assert train_main([*argv, f"data.val={val_dir}"]) == 0
    best = run / "checkpoints" / "pretrain" / "best.pt"
    evaluate = load_script("evaluate")
    argv = ["--data", str(val_dir), "--checkpoint", str(best), "--labels", "best", "--out", str(tmp_path / "eval")]
    assert evaluate.main([*argv, "--size", "64", "--batch-size", "4", "--workers", "0", "--device", "cpu"]) == 0
    printed = json.loads((tmp_path / "eval" / "summary.json").read_text())["results"]["best"]

    stored = load_checkpoint(best)["metrics"]
    events = EventAccumulator(str(run / "tb")).Reload()
    # The same uint8 predictions: metrics computed in float64 (PSNR, colourfulness, ΔCF) agree exactly, SSIM and
    # CIEDE2000 (float32 filters on differently laid-out copies of the same pixels) to float32 rounding.
    for name in ("psnr", "colorfulness", "delta_cf"):
        assert stored[name] == printed[name], name
    for name in ("ssim", "ciede2000"):
        assert stored[name] == pytest.approx(printed[name], rel=1e-6), name
    for name in ("psnr", "ssim", "colorfulness", "delta_cf", "ciede2000"):
        logged = events.Scalars(f"pretrain_val/{name}")[-1].value  # TensorBoard keeps float32
        assert logged == pytest.approx(printed[name], rel=1e-6, abs=1e-6), name
    assert f"{printed['psnr']:.2f}" in capsys.readouterr().out


def test_validation_with_hints_scores_the_models_own_use_of_them_without_the_spread():
    cfg = load_config(None, ["data.size=32", "model.pretrained=none", "model.hints=true", "model.last_cross=false"])
    colorizer = val_colorizer(build_generator(cfg.model, cfg.data.size), cfg, torch.device("cpu"))
    truth = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    hinted, _ = predict(colorizer, truth, hint_count=10)
    assert torch.equal(hinted, predict(colorizer, truth)[0])  # a fresh model ignores its hints; nothing spread
