"""Model files: a checkpoint file and a release folder read alike; the inference checkpoint the trainer writes."""

from __future__ import annotations

import pytest
import torch

from pix2color.checkpoint import load_checkpoint, save_checkpoint
from pix2color.errors import CheckpointError, UserError
from pix2color.model_files import (
    CONFIG,
    WEIGHTS,
    inference_checkpoint,
    inference_weights,
    load_generator,
    read_model_file,
)
from pix2color.release import export_release

NO_RECORD = {"stage": "pretrain", "step": None, "epoch": None, "metrics": {}}


@pytest.fixture(scope="module")
def release(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint as an fp32 release: the same weights, bit for bit."""
    return export_release(tiny_checkpoint, tmp_path_factory.mktemp("release") / "tiny", dtype="fp32")


def test_a_checkpoint_and_its_release_load_the_same_generator(tiny_checkpoint, release):
    from_file, file_cfg = load_generator(tiny_checkpoint)
    from_folder, folder_cfg = load_generator(release)
    assert (folder_cfg.model, folder_cfg.color, folder_cfg.data.size) == (
        file_cfg.model,
        file_cfg.color,
        file_cfg.data.size,
    )
    assert not from_folder.training
    weights = from_folder.state_dict()
    for name, tensor in from_file.state_dict().items():
        assert torch.equal(weights[name], tensor), name


def test_both_tell_what_their_weights_are_and_the_same_training_record(tiny_checkpoint, release):
    from_file, from_folder = read_model_file(tiny_checkpoint), read_model_file(release)
    assert (from_file.label, from_folder.label) == ("generator", "release")
    assert from_file.record == from_folder.record == NO_RECORD


def test_the_ema_weights_are_the_inference_weights_when_present():
    generator, ema = {"w": torch.zeros(1)}, {"w": torch.ones(1)}
    assert inference_weights({"generator": generator}) == (generator, "generator")
    assert inference_weights({"generator": generator, "generator_ema": ema}) == (ema, "EMA generator")


def test_inference_checkpoint_holds_what_inference_reads(tiny_checkpoint, tmp_path):
    generator, cfg = load_generator(tiny_checkpoint)
    assert set(inference_checkpoint(cfg, generator.state_dict(), "pretrain")) == {"config", "stage", "generator"}

    path = tmp_path / "best.pt"
    save_checkpoint(inference_checkpoint(cfg, generator.state_dict(), "gan", {"psnr": 21.5}, step=7), path)
    assert load_checkpoint(path)["metrics"] == {"psnr": 21.5}
    model = read_model_file(path)
    assert model.record == {"stage": "gan", "step": 7, "epoch": None, "metrics": {"psnr": 21.5}}
    loaded, loaded_cfg = load_generator(path)
    assert loaded_cfg == cfg
    assert all(torch.equal(loaded.state_dict()[name], t) for name, t in generator.state_dict().items())


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder: (folder / WEIGHTS).unlink(), "is a folder but not a pix2color release (no model.safetensors)"),
        (lambda folder: (folder / WEIGHTS).write_bytes(b"\x10\x00"), "model.safetensors is truncated or not a"),
        (lambda folder: (folder / CONFIG).write_text("model: [unclosed"), "config.yaml is not valid YAML"),
        (lambda folder: (folder / CONFIG).write_text("model:\n  encoder: resnet9000\n"), "model.encoder='resnet9000'"),
    ],
    ids=["no weights", "truncated weights", "bad yaml", "bad config value"],
)
def test_a_damaged_release_is_one_clear_error(tiny_checkpoint, tmp_path, damage, message):
    release = export_release(tiny_checkpoint, tmp_path / "release")
    damage(release)
    with pytest.raises((CheckpointError, UserError), match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_generator(release)
    assert "\n" not in str(error.value)
