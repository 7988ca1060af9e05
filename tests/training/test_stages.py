"""The stage objects on their own (no loop, no data): steps return tensors, schedules, state, a new variant."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.commands.train import main as train_main
from pix2color.config import RGB_TERM, load_config, marked_keys
from pix2color.runtime import Runtime
from pix2color.training import stages
from pix2color.training.context import StageContext
from pix2color.training.protocol import Progress, Stage
from pix2color.training.stages import Pix2PixStage, PretrainStage

SMALL = ["model.pretrained=none", "data.size=64", "train.amp=false", "train.channels_last=false", "train.device=cpu"]


def build(stage_class, *overrides: str):
    cfg = load_config(None, [*SMALL, *overrides])
    stage = stage_class(StageContext(cfg, Runtime(torch.device("cpu"))), resuming=False)
    stage.start_epoch(0)
    return stage


def batch(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("stage_class", [PretrainStage, Pix2PixStage])
def test_a_step_returns_finite_scalar_tensors_not_floats(stage_class):
    values = build(stage_class).step(batch(), Progress(0, 0.0))
    assert "loss_l1" in values and "grad_norm_g" in values
    for name, value in values.items():
        assert isinstance(value, torch.Tensor) and value.ndim == 0 and not value.requires_grad, name
        assert torch.isfinite(value), name


def test_stage1_trains_on_small_crops_for_its_small_share_then_at_data_size():
    pretrain = build(PretrainStage, "stage1.small_size=32", "stage1.small_share=0.5")
    assert [pretrain.crop_size(f) for f in (0.0, 0.49, 0.5, 1.0)] == [32, 32, 64, 64]
    assert build(PretrainStage).crop_size(0.0) == 64  # off by default
    assert build(Pix2PixStage, "stage1.small_size=32").crop_size(0.0) == 64  # a stage-1 knob only


def test_stage1_trains_the_decoder_alone_for_the_encoder_frozen_share_then_the_whole_generator():
    pretrain = build(PretrainStage, "model.encoder_frozen_share=0.5", "model.encoder_lr_mult=1.0")
    encoder, decoder = pretrain.g.encoder, pretrain.g.unet[1:]
    encoder_before = [p.detach().clone() for p in encoder.parameters()]
    decoder_before = [p.detach().clone() for p in decoder.parameters()]
    pretrain.step(batch(), Progress(0, 0.4))
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, encoder.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(decoder_before, decoder.parameters(), strict=True))
    pretrain.step(batch(1), Progress(1, 0.5))
    assert not all(torch.equal(a, b) for a, b in zip(encoder_before, encoder.parameters(), strict=True))


def test_the_default_recipes_colorfulness_term_and_label_smoothing_join_g_and_d_losses():
    recipe, plain = build(Pix2PixStage), build(Pix2PixStage, "stage2.colorfulness_weight=0", "stage2.real_label=1")
    values = recipe.step(batch(), Progress(0, 0.0))
    assert values["loss_colorfulness"] > 0 and "loss_colorfulness" not in plain.step(batch(), Progress(0, 0.0))
    assert recipe.gan_loss.real_label == 0.9 and plain.gan_loss.real_label == 1.0


def test_ciede2000_term_joins_g_loss_and_lowers_when_g_follows_it():
    assert "loss_ciede2000" not in build(Pix2PixStage).step(batch(), Progress(0, 0.0))
    torch.manual_seed(0)  # the generator's initial weights; at lr 1e-4 it descended from seeds 0 to 3 alike
    stage = build(
        Pix2PixStage,
        "stage2.ciede2000_weight=1",
        "stage2.lambda_l1=0",
        "stage2.gan_weight=0",
        "stage2.colorfulness_weight=0",
        "stage2.lr=1e-4",
    )
    steps = [stage.step(batch(), Progress(step, step / 8)) for step in range(8)]
    assert steps[0]["loss_g"] == steps[0]["loss_ciede2000"]  # the other terms weigh 0
    losses = [values["loss_ciede2000"].item() for values in steps]
    assert all(math.isfinite(value) for value in losses) and losses[-1] < losses[0]


def test_every_rgb_term_with_a_weight_is_built_and_logged():
    weight_keys = [key for key in marked_keys(RGB_TERM) if key.startswith("stage2.")]
    stage = build(Pix2PixStage, *(f"{key}=0.5" for key in weight_keys))
    values = stage.step(batch(), Progress(0, 0.0))
    assert set(stage.rgb_terms) == set(stages.RGB_TERMS)
    assert all(torch.isfinite(values[f"loss_{name}"]) for name in stages.RGB_TERMS)


def test_stage2_ema_decay_averages_stage_2_alone():
    assert build(PretrainStage, "stage2.ema_decay=0.99").ema is None
    assert build(Pix2PixStage, "stage2.ema_decay=0").ema is None
    stage = build(Pix2PixStage, "stage2.ema_decay=0.99", "train.ema_decay=0.5")
    before = {k: v.clone() for k, v in stage.ema.module.state_dict().items()}
    stage.step(batch(), Progress(0, 0.0))
    moved = [
        k for k, v in stage.ema.module.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])
    ]
    assert moved and build(Pix2PixStage, "stage2.ema_decay=0", "train.ema_decay=0.5").ema is not None


def test_stage2_scores_color_and_fidelity_against_its_start_and_picks_best_by_it():
    stage = build(Pix2PixStage, "stage2.color_weight=0.25")
    start = {"psnr": 24.0, "psnr_gray": 22.0, "delta_cf": 20.0}
    assert stage.best_metric == "color_fidelity" and build(PretrainStage).best_metric == "psnr"
    assert stage.scores(start, start) == {"color_fidelity": pytest.approx(0.75)}


def test_d_warm_up_trains_d_alone_and_g_schedule_still_reaches_its_end():
    stage = build(Pix2PixStage, "stage2.d_warmup_steps=2", "stage2.gan_ramp_steps=2")
    assert set(stage.step(batch(), Progress(0, 0.0))) == {"loss_d", "grad_norm_d", "d_real", "d_fake"}
    stage.step(batch(1), Progress(2, 0.4))  # G's first step: its schedule starts here
    lr = stage.opt_g.param_groups[0]["initial_lr"]
    assert stage.opt_g.param_groups[0]["lr"] == pytest.approx(lr) and stage.gan_weight == pytest.approx(0.5)
    values = stage.step(batch(2), Progress(5, 1.0))
    assert {"loss_g", "loss_g_gan", "loss_l1"} <= set(values)
    assert stage.opt_g.param_groups[0]["lr"] == pytest.approx(0.0) and stage.gan_weight == pytest.approx(1.0)


def test_state_round_trips_into_a_fresh_stage():
    trained = build(Pix2PixStage, "stage2.d_warmup_steps=1")
    trained.step(batch(), Progress(0, 0.0))
    trained.step(batch(1), Progress(1, 0.5))
    fresh = build(Pix2PixStage, "stage2.d_warmup_steps=1")
    fresh.load_state_dict(trained.state_dict(), "test")
    assert fresh.g_started_at == trained.g_started_at == 0.5
    for key, weight in trained.d.state_dict().items():
        assert torch.equal(fresh.d.state_dict()[key], weight), key
    assert fresh.opt_g.state_dict()["state"].keys() == trained.opt_g.state_dict()["state"].keys()


def test_bins_head_trains_on_rebalanced_cross_entropy_and_keeps_its_prior_across_a_resume():
    trained = build(PretrainStage, "model.chroma_head=bins")
    values = trained.step(batch(), Progress(0, 0.0))
    assert set(values) == {"loss_bins", "grad_norm_g"} and torch.isfinite(values["loss_bins"])
    assert trained.loss.counts.sum() == 2 * 64 * 64  # every pixel counted into the prior
    fresh = build(PretrainStage, "model.chroma_head=bins")
    fresh.load_state_dict(trained.state_dict(), "test")
    assert torch.equal(fresh.loss.counts, trained.loss.counts)
    assert torch.isfinite(build(Pix2PixStage, "model.chroma_head=bins").step(batch(), Progress(0, 0.0))["loss_g"])


def test_stage2_takes_a_stage1_checkpoint_written_before_the_chroma_head_but_not_another_head():
    from pix2color.config import config_to_dict
    from pix2color.errors import ConfigError

    ours = config_to_dict(load_config(None, SMALL))
    older = config_to_dict(load_config(None, SMALL))
    del older["model"]["chroma_head"], older["model"]["bins_temperature"]
    stages.check_same_model(ours, older, "old.pt")  # the keys it lacks take their defaults
    bins = config_to_dict(load_config(None, [*SMALL, "model.chroma_head=bins", "model.bins_temperature=0.5"]))
    with pytest.raises(ConfigError, match=r"old.pt was trained with model.chroma_head='bins'"):
        stages.check_same_model(ours, bins, "old.pt")


class VividPix2Pix(Pix2PixStage):
    """A toy stage-2 recipe: pix2pix plus a small reward for saturated chroma."""

    def generator_losses(self, rgb, lightness, chroma, fake, hints=None):
        parts, loss_g = super().generator_losses(rgb, lightness, chroma, fake, hints)
        parts["loss_vivid"] = -fake.float().abs().mean()
        return parts, loss_g + 0.1 * parts["loss_vivid"]


def write_photos(folder: Path) -> Path:
    for i in range(6):
        color = np.random.default_rng(i).integers(0, 256, (2, 2, 3)).astype(np.uint8)
        Image.fromarray(color).resize((72, 72)).save(folder / f"{i}.png")
    return folder


def test_a_new_stage2_variant_is_one_class_and_a_table_entry(tmp_path, monkeypatch, tiny_checkpoint):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    write_photos(tmp_path)
    monkeypatch.setitem(stages.STAGES, "gan", VividPix2Pix)
    argv = ["--data", str(tmp_path), "--out", str(tmp_path / "run"), "--stage", "gan", "--set", *SMALL]
    argv += [f"stage2.init_from={tiny_checkpoint}", "train.batch_size=2", "data.workers=0", "stage2.epochs=1"]
    assert train_main(argv) == 0
    events = EventAccumulator(str(Path(tmp_path / "run" / "tb"))).Reload()
    assert {"gan/loss_vivid", "gan/loss_g", "gan_val/psnr"} <= set(events.Tags()["scalars"])


class PolishStage(VividPix2Pix):
    """A third stage after gan, from gan's best.pt, with its own name, title and checkpoint folder."""

    name = "polish"
    title = "stage 3 (vivid polish)"


def test_a_third_stage_is_one_class_and_an_entry_and_the_run_trains_it_after_gan(tmp_path, monkeypatch):
    """Nothing in pix2color/ names the stages: --stage, the order, the budget, folders and resume follow STAGES."""
    from pix2color.checkpoint import load_checkpoint

    monkeypatch.setitem(stages.STAGES, PolishStage.name, PolishStage)
    run = tmp_path / "run"
    argv = ["--data", str(write_photos(tmp_path)), "--out", str(run), "--set", *SMALL, "train.batch_size=2"]
    argv += ["data.workers=0", "stage1.epochs=1", "stage2.epochs=1", "data.grid_images=0"]
    assert train_main(argv) == 0
    for name in ("pretrain", "gan", "polish"):
        assert load_checkpoint(run / "checkpoints" / name / "best.pt")["stage"] == name
    last = load_checkpoint(run / "checkpoints" / "polish" / "last.pt")
    assert last["stages"] == ["pretrain", "gan", "polish"] and last["finished"]
    assert train_main(["--resume", str(run)]) == 0  # finds polish/last.pt, the newest: nothing left to do
    assert train_main([*argv, "--stage", "polish", "--set", "stage2.epochs=2"]) == 0  # continues gan's folder
    assert load_checkpoint(run / "checkpoints" / "polish" / "last.pt")["epoch"] == 2


@pytest.mark.parametrize("stage_class", list(stages.STAGES.values()))
def test_every_stage_satisfies_the_protocol_the_loop_relies_on(stage_class):
    stage = build(stage_class)
    assert isinstance(stage, Stage)
    assert all(isinstance(getattr(stage_class, key), str) and getattr(stage_class, key) for key in ("name", "title"))
    assert hasattr(stage.ctx.cfg, stage_class.section) and stage.best_metric
