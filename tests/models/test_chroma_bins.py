"""Chroma bins: the in-gamut grid, soft encoding, annealed-mean decoding, the bins head in the generator."""

from __future__ import annotations

import itertools

import pytest
import torch

from pix2color import color
from pix2color.config import ModelConfig
from pix2color.models.chroma_bins import ChromaBins
from pix2color.models.generator import build_generator


@pytest.fixture(scope="module")
def bins() -> ChromaBins:
    return ChromaBins("lab")


def cube_chroma(space: str, steps: int = 9) -> torch.Tensor:
    """(1, 2, N, 1) chroma of an RGB cube sampled at ``steps`` levels per channel."""
    levels = torch.linspace(0, 1, steps).tolist()
    rgb = torch.tensor(list(itertools.product(levels, repeat=3))).T.reshape(1, 3, -1, 1)
    return color.rgb_to_l_chroma(rgb, space)[1]


def test_lab_grid_holds_the_cells_the_srgb_cube_reaches_with_gray_among_them(bins):
    assert 250 <= len(bins) <= 313  # Zhang et al. keep 313 cells of a wider gamut; sRGB's cube reaches 262
    assert len(color.chroma_grid("lab", 10.0, levels=64)[0]) <= len(bins)  # a coarser cube finds no more cells
    assert torch.isclose(bins.centers, torch.zeros(2)).all(dim=1).sum() == 1
    assert bins.centers.abs().max() <= 1 + 10 / 110 + 1e-6


@pytest.mark.parametrize("space", ["lab", "luv"])
def test_every_srgb_color_is_encoded_onto_bins_whose_centers_lie_around_it(space):
    bins = ChromaBins(space)
    chroma = cube_chroma(space)
    index, weight = bins.soft_encode(chroma)
    assert torch.allclose(weight.sum(dim=1), torch.ones(1))
    nearest = index.gather(1, weight.argmax(dim=1, keepdim=True))[0, 0, :, 0]
    offset = (bins.centers[nearest] - chroma[0, :, :, 0].T).abs() / bins.spacing
    assert (offset <= 0.5 + 1e-4).all()  # the heaviest bin is the pixel's own cell


def test_a_center_is_encoded_mostly_onto_its_own_bin(bins):
    chroma = bins.centers[:50].T.reshape(1, 2, 50, 1)
    index, weight = bins.soft_encode(chroma)
    assert torch.equal(index.gather(1, weight.argmax(dim=1, keepdim=True)).flatten(), torch.arange(50))
    assert (weight.amax(dim=1) > 0.5).all()  # sigma half a cell: the four side neighbours get e^-2 each


def test_annealed_mean_goes_from_the_mean_at_temperature_1_to_the_mode_near_0(bins):
    logits = torch.zeros(1, len(bins), 1, 1)
    logits[0, 7] = 3.0
    probabilities = torch.softmax(logits[0, :, 0, 0], dim=0)
    mean = bins.decode(logits, 1.0)[0, :, 0, 0]
    assert torch.allclose(mean, probabilities @ bins.centers, atol=1e-6)
    assert torch.allclose(bins.decode(logits, 0.01)[0, :, 0, 0], bins.centers[7], atol=1e-5)
    assert bins.decode(logits, 0.38)[0].norm() > mean.norm()


def test_bins_head_predicts_chroma_and_gives_its_logits_on_request():
    cfg = ModelConfig(encoder="resnet18", pretrained="none", chroma_head="bins")
    generator = build_generator(cfg, 64).eval()
    lightness = torch.rand(2, 1, 64, 64) * 2 - 1
    logits, chroma = generator(lightness, decode=False), generator(lightness)
    assert logits.shape == (2, len(generator.head.bins), 64, 64) and chroma.shape == (2, 2, 64, 64)
    assert torch.allclose(chroma, generator.head.bins.decode(logits, cfg.bins_temperature), atol=1e-5)
    assert not any("bins" in key for key in generator.state_dict())  # rebuilt from the config, not stored


def test_regression_head_returns_the_same_chroma_either_way():
    generator = build_generator(ModelConfig(encoder="resnet18", pretrained="none"), 64).eval()
    lightness = torch.rand(1, 1, 64, 64) * 2 - 1
    assert torch.equal(generator(lightness), generator(lightness, decode=False))
