"""Losses on tensors whose answer is known, and the frozen VGG16 perceptual loss."""

import math

import pytest
import torch

from pix2color import metrics
from pix2color.errors import ConfigError
from pix2color.losses import (
    GAN_LOSSES,
    PerceptualLoss,
    RebalancedBinsLoss,
    build_gan_loss,
    ciede2000_loss,
    colorfulness_gap,
    l1_chroma,
)
from pix2color.models.chroma_bins import ChromaBins


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


def test_ciede2000_loss_is_the_metric_and_pulls_sepia_towards_the_truth():
    truth = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    gray = truth.mean(dim=1, keepdim=True)
    sepia = (gray + 0.3 * (truth - gray)).requires_grad_()
    loss = ciede2000_loss(sepia, truth)
    as_uint8 = [(x.detach() * 255).round().byte() for x in (sepia, truth)]
    assert loss.item() == pytest.approx(metrics.ciede2000(*as_uint8).mean().item(), abs=0.05)
    loss.backward()
    assert torch.isfinite(sepia.grad).all() and ciede2000_loss(sepia - 0.01 * sepia.grad, truth) < loss
    assert ciede2000_loss(truth, truth).item() == pytest.approx(0, abs=1e-5)


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


def test_bins_loss_is_lowest_for_logits_that_put_the_truths_bin_first():
    bins = ChromaBins("lab")
    truth = bins.centers[[3, 200]].T.reshape(1, 2, 1, 2)  # two pixels on bin centers
    loss = RebalancedBinsLoss(bins, prior_mix=1.0)
    right, wrong = torch.zeros(1, len(bins), 1, 2), torch.zeros(1, len(bins), 1, 2)
    right[0, 3, 0, 0] = right[0, 200, 0, 1] = 10.0
    wrong[0, 200, 0, 0] = wrong[0, 3, 0, 1] = 10.0
    assert loss(right, truth) < loss(torch.zeros_like(right), truth) < loss(wrong, truth)


def test_bins_loss_counts_the_prior_and_weighs_rare_colors_up():
    bins = ChromaBins("lab")
    loss = RebalancedBinsLoss(bins, prior_mix=0.5)
    gray, rare = bins.centers[:, 0].abs().add(bins.centers[:, 1].abs()).argmin().item(), 5
    truth = bins.centers[[gray] * 9 + [rare]].T.reshape(1, 2, 1, 10)
    logits = torch.zeros(1, len(bins), 1, 10, requires_grad=True)
    loss(logits, truth).backward()
    assert loss.counts.sum() == 10 and loss.counts[gray] == 9 and loss.counts[rare] == 1
    weights = loss.class_weights()
    assert weights[rare] > weights[gray]
    prior = loss.smoothing.double() @ (loss.counts / loss.counts.sum())
    assert (prior * weights.double()).sum().item() == pytest.approx(1.0, rel=1e-5)  # E_prior[w] = 1
    assert logits.grad.abs()[0, :, 0, 9].sum() > logits.grad.abs()[0, :, 0, 0].sum()  # the rare pixel pulls harder


def test_bins_loss_with_prior_mix_1_weighs_every_color_alike():
    loss = RebalancedBinsLoss(ChromaBins("lab"), prior_mix=1.0)
    loss.counts[:5] = torch.tensor([100.0, 1, 0, 7, 3], dtype=torch.float64)
    assert torch.allclose(loss.class_weights(), torch.ones(len(loss.bins)))
