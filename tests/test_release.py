"""Release folders: export (safetensors, config, model card), load wherever a checkpoint loads, colorize alike."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pix2color.checkpoint import load_checkpoint, save_checkpoint
from pix2color.config import config_to_dict, load_config
from pix2color.data import open_image
from pix2color.errors import UserError
from pix2color.hint_points import parse_hints
from pix2color.inference import Colorizer
from pix2color.model_files import CONFIG, WEIGHTS, inference_checkpoint, load_generator
from pix2color.models.generator import build_generator
from pix2color.release import CARD, export_release

FP16_RELEASE_MAX_BYTES = 65_000_000  # the ResNet18 U-Net target


def photo(width: int = 72, height: int = 56, seed: int = 0) -> Image.Image:
    """Smooth colour gradients plus texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x / 7 + y / 5)], axis=-1) * 200 + 20
    return Image.fromarray(np.clip(base + rng.integers(-20, 21, (height, width, 1)), 0, 255).astype(np.uint8))


def max_difference(first: Colorizer, second: Colorizer, images: list[Image.Image]) -> int:
    """The largest difference, in 8-bit levels, between the two colorizers' outputs for ``images``."""
    pairs = zip(first.colorize_batch(images), second.colorize_batch(images), strict=True)
    return max(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() for a, b in pairs)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A stage 2 checkpoint as the trainer writes best.pt: EMA weights apart from the generator's, metrics, step."""
    cfg = load_config(
        None,
        [
            "model.pretrained=none",
            "data.size=64",
            "data.train=[photos/train]",
            "stage2.lr=1e-4",
            "stage2.ciede2000_weight=2",
            "stage2.colorfulness_weight=0",
            "stage1.small_size=32",
        ],
    )
    torch.manual_seed(1)
    generator, ema = build_generator(cfg.model, 64), build_generator(cfg.model, 64)
    metrics = {"psnr": 23.456, "colorfulness": 17.2, "delta_cf": 15.1, "ssim": 0.9518}
    state = inference_checkpoint(cfg, generator.state_dict(), "gan", metrics, step=1234)
    state |= {"generator_ema": ema.state_dict(), "stage_title": "stage 2 (pix2pix GAN)"}  # as the loop writes it
    path = tmp_path_factory.mktemp("run") / "best.pt"
    save_checkpoint(state, path)
    return path


def test_fp16_release_round_trips_and_colors_within_one_level_of_the_checkpoint(tiny_checkpoint, tmp_path):
    """Both sides compute in fp32, so the difference is the fp16 storage of the weights alone."""
    release = export_release(tiny_checkpoint, tmp_path / "release")
    assert sorted(p.name for p in release.iterdir()) == sorted([WEIGHTS, CONFIG, CARD])  # no temp files left

    loaded, cfg = load_generator(release)
    original, original_cfg = load_generator(tiny_checkpoint)
    assert (cfg.model, cfg.color, cfg.data.size) == (original_cfg.model, original_cfg.color, original_cfg.data.size)
    for name, tensor in original.state_dict().items():  # each weight is the checkpoint's, rounded to fp16
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        assert torch.equal(loaded.state_dict()[name], expected), name

    images = [photo(seed=0), photo(40, 64, seed=1)]
    from_release = Colorizer.from_pretrained(release, device="cpu", precision="fp32")
    from_checkpoint = Colorizer.from_checkpoint(tiny_checkpoint, device="cpu", precision="fp32")
    assert from_release.render_size == 64  # the training size, from config.yaml
    assert max_difference(from_release, from_checkpoint, images) <= 1


def test_a_bins_head_release_colors_like_its_checkpoint(tmp_path):
    """The bins are rebuilt from config.yaml, not stored: the release still decodes the same chroma."""
    cfg = load_config(None, ["model.pretrained=none", "data.size=64", "model.chroma_head=bins"])
    torch.manual_seed(2)
    generator = build_generator(cfg.model, 64)
    save_checkpoint(inference_checkpoint(cfg, generator.state_dict(), "pretrain"), tmp_path / "bins.pt")
    release = export_release(tmp_path / "bins.pt", tmp_path / "release", dtype="fp32")
    from_release = Colorizer.from_pretrained(release, device="cpu", precision="fp32")
    from_checkpoint = Colorizer.from_checkpoint(tmp_path / "bins.pt", device="cpu", precision="fp32")
    assert max_difference(from_release, from_checkpoint, [photo(seed=0), photo(40, 64, seed=1)]) == 0


def test_fp32_release_holds_exactly_the_checkpoint_weights(tiny_checkpoint, tmp_path):
    release = export_release(tiny_checkpoint, tmp_path / "release", dtype="fp32")
    loaded, _ = load_generator(release)
    original, _ = load_generator(tiny_checkpoint)
    for name, tensor in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_release_takes_the_ema_weights_and_its_card_tells_data_recipe_steps_and_metrics(trained_checkpoint, tmp_path):
    release = export_release(trained_checkpoint, tmp_path / "release", dtype="fp32")
    loaded, _ = load_generator(release)
    ema = load_checkpoint(trained_checkpoint)["generator_ema"]
    assert all(torch.equal(loaded.state_dict()[name], tensor) for name, tensor in ema.items())

    card = (release / CARD).read_text()
    for expected in (
        "resnet18 U-Net, stage 2 (pix2pix GAN)",
        "| training data | photos/train |",
        "| steps | 1234 |",
        "| psnr | 23.46 |",
        "| ssim | 0.9518 |",
        "lr 0.0001",  # stage 2's learning rate
        "onecycle, 32 px crops for its first 75%",  # stage 1's progressive resizing
        "1 x lsgan GAN + 100 x L1 + 2 x ciede2000, ",  # the terms that are on, and only those
        "EMA weights",
        "runs no code",
    ):
        assert expected in card, expected
    full_config = json.loads(card.split("```json\n")[1].split("```")[0])
    assert full_config == config_to_dict(load_config(None, [])) | full_config  # every section is there
    assert yaml.safe_load((release / CONFIG).read_text()) == {
        "model": full_config["model"],
        "color": full_config["color"],
        "data": {"size": 64},
    }


def test_a_checkpoint_from_before_stage_titles_gets_its_stage_s_old_title_on_the_card(tiny_checkpoint, tmp_path):
    assert "stage_title" not in load_checkpoint(tiny_checkpoint)
    card = (export_release(tiny_checkpoint, tmp_path / "release") / CARD).read_text()
    assert "resnet18 U-Net, stage 1 (L1)" in card


def test_the_card_of_a_stage_2_best_pt_that_no_epoch_beat_says_it_holds_the_starting_weights(
    trained_checkpoint, tmp_path
):
    from_start = tmp_path / "best.pt"
    save_checkpoint(load_checkpoint(trained_checkpoint) | {"step": 0, "from_start": True}, from_start)
    card = (export_release(from_start, tmp_path / "release") / CARD).read_text()
    assert "| steps | 0 (the weights the stage started from: no epoch beat them) |" in card
    assert "| steps | 1234 |" in (export_release(trained_checkpoint, tmp_path / "other") / CARD).read_text()


def test_weights_file_is_safetensors_tensors_and_json_only(tiny_checkpoint, tmp_path):
    data = (export_release(tiny_checkpoint, tmp_path / "release") / WEIGHTS).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__")
    training = json.loads(metadata.pop("training"))
    assert metadata == {"format": "pt", "pix2color_release": "1", "dtype": "fp16"}
    assert set(training) == {"stage", "step", "epoch", "metrics"}
    assert {entry["dtype"] for entry in header.values()} == {"F16", "I64"}  # BatchNorm's counts stay integers


def test_exporting_again_replaces_a_release_but_never_fills_another_folder(
    tiny_checkpoint, trained_checkpoint, tmp_path
):
    release = export_release(tiny_checkpoint, tmp_path / "release")
    export_release(trained_checkpoint, release)
    assert "stage 2" in (release / CARD).read_text()

    project = tmp_path / "project"
    project.mkdir()
    (project / CARD).write_text("my own README")
    with pytest.raises(UserError, match=f"--release {project} holds other files and is not a release"):
        export_release(tiny_checkpoint, project)
    assert [p.name for p in project.iterdir()] == [CARD] and (project / CARD).read_text() == "my own README"
    with pytest.raises(UserError, match="is a file"):
        export_release(tiny_checkpoint, project / CARD)


def test_resnet18_unet_release_is_under_65_mb_and_colors_the_val_photos_like_its_checkpoint(shared_data, tmp_path):
    """Reads four photos of ../shared/data/val. The standard ResNet18 U-Net (random weights, 31.1 M parameters)."""
    cfg = load_config(None, ["model.pretrained=none"])
    torch.manual_seed(0)
    generator = build_generator(cfg.model, cfg.data.size)
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(inference_checkpoint(cfg, generator.state_dict(), "pretrain"), checkpoint)
    del generator
    release = export_release(checkpoint, tmp_path / "release")
    assert (release / WEIGHTS).stat().st_size < FP16_RELEASE_MAX_BYTES

    images = [open_image(path) for path in sorted((shared_data / "val").glob("*.jpg"))[:4]]
    settings = {"device": "cpu", "render_size": 128, "precision": "fp32"}
    from_release = Colorizer.from_pretrained(release, **settings)
    assert max_difference(from_release, Colorizer.from_checkpoint(checkpoint, **settings), images) <= 1


def test_a_release_of_a_model_that_takes_hints_colours_with_them_as_its_checkpoint_does(
    tmp_path, write_checkpoint, random_pyramid
):
    overrides = ["data.size=64", "model.hints=true", "model.last_cross=false"]
    checkpoint = write_checkpoint(tmp_path / "best.pt", overrides, prepare=random_pyramid)
    release = export_release(checkpoint, tmp_path / "release", dtype="fp32")
    hints = parse_hints([{"x": 30, "y": 20, "color": "#2050d0", "size": 12}], "test")
    from_checkpoint, from_release = (
        Colorizer.from_checkpoint(path, precision="fp32", with_hint_spread=False) for path in (checkpoint, release)
    )
    assert from_release.takes_hints
    hinted = from_release.colorize(photo(), hints=hints)
    assert np.array_equal(np.asarray(hinted), np.asarray(from_checkpoint.colorize(photo(), hints=hints)))
    assert not np.array_equal(np.asarray(hinted), np.asarray(from_release.colorize(photo())))
