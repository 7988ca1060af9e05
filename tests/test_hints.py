"""Colour hints: patches hold their region's mean truth, later patches cover earlier ones, counts follow the
geometric law, sizes scale with the crop, and the same seed draws the same hints."""

import math

import pytest
import torch

from pix2color.config import HintsConfig
from pix2color.hints import fixed_count_hints, paint_hints, training_hints


def truth(batch: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 2, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_a_patch_holds_the_mean_truth_of_its_square_and_the_mask_marks_it():
    chroma = truth(1)
    hints = paint_hints(chroma, torch.tensor([[[10.0, 20.0]]]), torch.tensor([[3]]), torch.tensor([[True]]))
    mask = hints[0, 2]
    assert mask.sum() == 9 and mask[9:12, 19:22].all()
    expected = chroma[0, :, 9:12, 19:22].mean(dim=(1, 2))
    assert torch.allclose(hints[0, :2, 9:12, 19:22], expected[:, None, None].expand(-1, 3, 3), atol=1e-6)
    assert hints[0, :2][:, mask == 0].abs().max() == 0  # no chroma outside the hints


def test_a_later_patch_covers_an_earlier_one_and_an_absent_one_paints_nothing():
    chroma = truth(1)
    centers = torch.tensor([[[30.0, 30.0], [31.0, 31.0], [5.0, 5.0]]])
    hints = paint_hints(chroma, centers, torch.tensor([[5, 3, 4]]), torch.tensor([[True, True, False]]))
    second = chroma[0, :, 30:33, 30:33].mean(dim=(1, 2))
    assert torch.allclose(hints[0, :2, 31, 31], second, atol=1e-6)  # under both: the later one
    assert hints[0, 2].sum() == 25 and hints[0, 2, :10, :10].sum() == 0


def test_patches_at_the_border_are_clipped_to_the_image():
    chroma = truth(1, size=32)
    hints = paint_hints(chroma, torch.tensor([[[0.0, 31.0]]]), torch.tensor([[5]]), torch.tensor([[True]]))
    assert hints[0, 2].sum() == 3 * 3  # rows 0..2 (clamped top at 0), columns 29..31
    assert torch.allclose(hints[0, :2, 0, 31], chroma[0, :, 0:3, 29:32].mean(dim=(1, 2)), atol=1e-6)


def test_training_counts_are_geometric_with_the_configured_stop_probability():
    cfg = HintsConfig()
    hints = training_hints(truth(2000, size=32), cfg, torch.Generator().manual_seed(0))
    with_none = (hints[:, 2].flatten(1).sum(1) == 0).float().mean().item()
    # P(0 hints) = p = 1/8; overlapping patches cannot make an image with hints look empty
    assert with_none == pytest.approx(cfg.stop_probability, abs=3 * math.sqrt(0.125 * 0.875 / 2000))


def test_training_patch_sizes_scale_with_the_crop():
    cfg = HintsConfig(stop_probability=0.5, max_count=1, min_size=8, max_size=8, reference_size=256)
    for size, side in ((256, 8), (128, 4), (64, 2)):
        hints = training_hints(truth(64, size=size), cfg, torch.Generator().manual_seed(1))
        areas = hints[:, 2].flatten(1).sum(1)
        assert areas.max() == side * side  # a patch clipped at the border is smaller, none larger


def test_the_same_seed_draws_the_same_hints_and_another_seed_others():
    chroma = truth(4)
    first, again, other = (
        training_hints(chroma, HintsConfig(), torch.Generator().manual_seed(seed)) for seed in (3, 3, 4)
    )
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_fixed_count_hints_give_each_image_that_many_patches_around_the_middle():
    hints = fixed_count_hints(truth(8, size=256), 10, 6, 0.25, torch.Generator().manual_seed(0))
    mask = hints[:, 2]
    assert (mask.flatten(1).sum(1) <= 10 * 36).all() and (mask.flatten(1).sum(1) >= 36).all()
    rows = torch.nonzero(mask)[:, 1].float()
    assert abs(rows.mean().item() - 127.5) < 16  # centred, sigma a quarter of the side
    assert fixed_count_hints(truth(2), 0, 6, 0.25, torch.Generator()).abs().sum() == 0
