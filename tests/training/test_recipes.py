"""The shipped recipes: every config trains stage 2 with the default recipe, and it trains unchanged at 256 px with
``pretrained: imagenet`` (from a torchvision state dict this test writes where torch hub looks, offline)."""

from __future__ import annotations

import dataclasses
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from pix2color.checkpoint import load_checkpoint
from pix2color.commands.train import main as train_main
from pix2color.config import load_config
from pix2color.models.pretrained import hub_file

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPE_KEYS_PER_RUN = {"epochs", "init_from"}  # what a recipe may size to its run; the rest is the recipe
ONE_STEP = [
    "data.val_fraction=0.5",
    "data.workers=0",
    "data.grid_images=1",
    "train.batch_size=2",
    "train.minutes=0",
    "train.max_steps_per_epoch=1",
    "stage1.epochs=1",
    "stage2.epochs=1",
]


def stage2_recipe(path: Path | None) -> dict:
    """The stage-2 section of a config file (None: the defaults), less what a run sizes, and its discriminator."""
    cfg = load_config(path)
    stage2 = {key: value for key, value in dataclasses.asdict(cfg.stage2).items() if key not in RECIPE_KEYS_PER_RUN}
    return stage2 | {"disc": dataclasses.asdict(cfg.disc)}


def test_every_config_trains_stage2_with_the_default_recipe():
    recipe = stage2_recipe(None)
    for config in sorted(CONFIGS.glob("*.yaml")):
        assert stage2_recipe(config) == recipe, config.name


@pytest.fixture
def imagenet_offline(tmp_path, monkeypatch) -> Path:
    """$TORCH_HOME holding a resnet18 ImageNet file (random weights, seed 0); any download fails."""

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"no network for {url}")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    file = hub_file(torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    file.parent.mkdir(parents=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(torchvision.models.resnet18().state_dict(), file)
    return file


@pytest.mark.parametrize(
    ("config", "extra"),
    [("quickstart.yaml", ["data.size=256"]), ("resnet18_256.yaml", [])],
)
def test_the_recipe_trains_at_256_px_from_imagenet_weights(config, extra, imagenet_offline, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        base = rng.integers(0, 256, size=(3, 3, 3)).astype(np.uint8)
        Image.fromarray(base).resize((300, 272), Image.BILINEAR).save(photos / f"photo_{i}.jpg")
    run = tmp_path / "run"
    argv = ["--config", str(CONFIGS / config), "--data", str(photos), "--out", str(run), "--set", *ONE_STEP, *extra]
    assert train_main(argv) == 0
    best = load_checkpoint(run / "checkpoints" / "gan" / "best.pt")
    assert best["config"]["data"]["size"] == 256 and best["config"]["model"]["pretrained"] == "imagenet"
    assert np.isfinite(best["metrics"]["color_fidelity"])
