"""Losses on tensors whose answer is known, and the frozen VGG16 perceptual loss."""

import math

import pytest
import torch

from pix2color import metrics
from pix2color.errors import ConfigError
from pix2color.losses import GAN_LOSSES, PerceptualLoss, build_gan_loss, colorfulness_gap, l1_chroma


def _full(value: float) -> torch.Tensor:
    return torch.full((2, 1, 30, 30), float(value))


def test_l1_chroma_is_the_mean_absolute_error():
    pred = torch.tensor([0.5, -0.5, 0.0, 1.0]).view(1, 2, 1, 2)
    assert l1_chroma(pred, torch.zeros_like(pred)).item() == pytest.approx(0.5)


def test_vanilla_at_zero_logits_is_log_2():
    loss = build_gan_loss("vanilla")
    assert loss.discriminator(_full(0), _full(0)).item() == pytest.approx(math.log(2))
    assert loss.generator(_full(0)).item() == pytest.approx(math.log(2))
    assert loss.discriminator(_full(20), _full(-20)).item() == pytest.approx(0, abs=1e-6)


def test_lsgan_pulls_real_to_one_and_fake_to_zero():
    loss = build_gan_loss("lsgan")
    assert loss.discriminator(_full(1), _full(0)).item() == 0
    assert loss.discriminator(_full(0), _full(1)).item() == pytest.approx(1)
    assert loss.generator(_full(0)).item() == pytest.approx(1)
    assert loss.generator(_full(1)).item() == 0


def test_hinge_has_margins_at_plus_minus_one():
    loss = build_gan_loss("hinge")
    assert loss.discriminator(_full(1), _full(-1)).item() == 0
    assert loss.discriminator(_full(3), _full(-2)).item() == 0
    assert loss.discriminator(_full(0), _full(0)).item() == pytest.approx(1)
    assert loss.generator(_full(2)).item() == pytest.approx(-2)


@pytest.mark.parametrize(
    ("name", "real", "fake", "undecided"), [("vanilla", 20, -20, 0), ("lsgan", 1, 0, 0.5), ("hinge", 1, -1, 0)]
)
def test_score_is_one_at_the_real_target_zero_at_the_fake_one_and_stays_in_0_1(name, real, fake, undecided):
    loss = build_gan_loss(name)
    assert loss.score(_full(real)).mean().item() == pytest.approx(1, abs=1e-6)
    assert loss.score(_full(fake)).mean().item() == pytest.approx(0, abs=1e-6)
    assert loss.score(_full(undecided)).mean().item() == pytest.approx(0.5)
    beyond = loss.score(torch.linspace(-50, 50, 101))
    assert beyond.min() >= 0 and beyond.max() <= 1


@pytest.mark.parametrize("name", list(GAN_LOSSES))
def test_label_smoothing_moves_only_the_discriminators_real_target(name):
    logits = torch.linspace(-1, 3, 8).view(1, 1, 2, 4)
    plain, smoothed = build_gan_loss(name), build_gan_loss(name, real_label=0.9)
    assert smoothed.discriminator(logits, logits) != plain.discriminator(logits, logits)
    assert smoothed.generator(logits) == plain.generator(logits)
    assert smoothed.fake(logits) == plain.fake(logits)


def test_colorfulness_gap_is_zero_on_equal_images_and_pulls_sepia_towards_the_truth():
    truth = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert colorfulness_gap(truth, truth) == 0
    gray = truth.mean(dim=1, keepdim=True)
    sepia = (gray + 0.1 * (truth - gray)).requires_grad_()
    gap = colorfulness_gap(sepia, truth)
    gap.backward()
    stepped = (sepia - 1e-3 * sepia.grad).detach()
    assert gap > 10 and colorfulness_gap(stepped, truth) < gap
    before, after = (metrics.colorfulness((x * 255).round().byte()).mean() for x in (sepia.detach(), stepped))
    assert after > before


def test_an_unknown_gan_loss_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="stage2.gan_loss='wgan'") as error:
        build_gan_loss("wgan")
    assert all(name in str(error.value) for name in GAN_LOSSES)


def test_perceptual_loss_is_frozen_zero_on_equal_images_and_trains_the_prediction():
    loss = PerceptualLoss(pretrained="none", layers=("relu1_2", "relu2_2"))
    assert not any(p.requires_grad for p in loss.parameters())
    target = torch.rand(2, 3, 64, 64)
    assert loss(target, target).item() == 0
    pred = torch.rand(2, 3, 64, 64, requires_grad=True)
    value = loss(pred, target)
    value.backward()
    assert value.item() > 0
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_perceptual_loss_rejects_unknown_layers_and_missing_weights(tmp_path):
    with pytest.raises(ValueError, match="relu9_9"):
        PerceptualLoss(pretrained="none", layers=("relu9_9",))
    with pytest.raises(ConfigError, match="no such file"):
        PerceptualLoss(pretrained=str(tmp_path / "vgg16.pth"))
