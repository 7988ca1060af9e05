"""Spreading hints after the model: the hint inside itself, its correction carried across its own region and
not across an edge, nothing changed without hints, and the same result however many cells are weighed at once."""

import pytest
import torch

from pix2color import hint_spread
from pix2color.errors import ConfigError
from pix2color.hint_spread import HintSpread, spread_hints
from pix2color.hints import paint_values


def two_halves(size: int = 32) -> torch.Tensor:
    """(1, 1, size, size) lightness: dark left half, light right half."""
    lightness = torch.full((1, 1, size, size), 0.6)
    lightness[..., : size // 2] = -0.6
    return lightness


def hint_at(y: float, x: float, value: tuple[float, float], size: int = 32, side: int = 3) -> torch.Tensor:
    """(1, 3, size, size) one square hint of ``value``."""
    values = torch.tensor([[value]])
    return paint_values(values, torch.tensor([[[y, x]]]), torch.tensor([[side]]), torch.tensor([[True]]), size, size)


def test_the_correction_fills_the_hints_region_and_stops_at_its_edge():
    model_chroma = torch.full((1, 2, 32, 32), 0.05)
    hints = hint_at(16, 5, (0.4, -0.3))
    out = spread_hints(two_halves(), model_chroma, hints)
    assert torch.allclose(out[0, :, 16, 5], torch.tensor([0.4, -0.3]))  # inside the hint: the hint
    left, right = out[0, :, :, :16], out[0, :, :, 16:]
    assert (left[0] > 0.3).all() and (left[1] < -0.2).all()  # the dark half takes the hint's colour
    assert torch.allclose(right, torch.full_like(right, 0.05), atol=1e-3)  # the light half keeps the model's


def test_worked_out_smaller_the_correction_still_stops_within_a_working_pixel_of_the_edge():
    model_chroma = torch.full((1, 2, 64, 64), 0.05)
    out = spread_hints(two_halves(64), model_chroma, hint_at(32, 10, (0.4, -0.3), size=64), HintSpread(work_size=16))
    assert torch.allclose(out[0, :, 32, 10], torch.tensor([0.4, -0.3]))  # the hint itself at full size
    assert (out[0, 0, :, :28] > 0.3).all() and (out[0, 1, :, :28] < -0.2).all()
    assert torch.allclose(out[0, :, :, 36:], torch.full((2, 64, 28), 0.05), atol=1e-3)  # 4 px: one working pixel


def test_the_models_own_colour_stays_where_no_hint_is_near():
    lightness = torch.zeros(1, 1, 64, 64)
    model_chroma = torch.zeros(1, 2, 64, 64)
    out = spread_hints(lightness, model_chroma, hint_at(2, 2, (0.5, 0.5), size=64), HintSpread(reach=0.05))
    assert out[0, 0, 2, 2] == 0.5 and out[0, :, 40:, 40:].abs().max() < 1e-3


def test_without_hints_the_models_chroma_comes_back_unchanged_in_a_batch_with_hints():
    chroma = torch.rand(2, 2, 32, 32) - 0.5
    lightness = torch.rand(2, 1, 32, 32) * 2 - 1
    hints = torch.cat([hint_at(10, 10, (0.3, 0.1)), torch.zeros(1, 3, 32, 32)])
    out = spread_hints(lightness, chroma, hints)
    assert torch.equal(out[1], chroma[1])
    assert not torch.allclose(out[0], chroma[0])


def test_weighing_the_cells_in_chunks_gives_what_weighing_them_at_once_gives(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    lightness = torch.rand(2, 1, 48, 48, generator=generator) * 2 - 1
    chroma = torch.rand(2, 2, 48, 48, generator=generator) - 0.5
    values = torch.rand(2, 12, 2, generator=generator) - 0.5
    centers = torch.rand(2, 12, 2, generator=generator) * 47
    present = torch.arange(12)[None] < torch.tensor([[12], [5]])
    hints = paint_values(values, centers, torch.full((2, 12), 3), present, 48, 48)
    monkeypatch.setattr(hint_spread, "CELLS_PER_CHUNK", 1000)
    at_once = spread_hints(lightness, chroma, hints)
    monkeypatch.setattr(hint_spread, "CELLS_PER_CHUNK", 3)
    assert torch.allclose(spread_hints(lightness, chroma, hints), at_once, atol=1e-5)  # float32 sums in another order


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_result_is_float32_whatever_the_models_dtype(dtype):
    out = spread_hints(two_halves().to(dtype), torch.zeros(1, 2, 32, 32, dtype=dtype), hint_at(16, 5, (0.4, 0.2)))
    assert out.dtype == torch.float32 and out.shape == (1, 2, 32, 32)


def test_worked_out_smaller_a_smooth_spread_stays_within_a_few_hundredths_of_the_full_one():
    rows = torch.linspace(-0.5, 0.5, 128)
    lightness = (rows[None, :] + rows[:, None])[None, None] / 2  # a smooth ramp
    model_chroma = torch.zeros(1, 2, 128, 128)
    values, centers = torch.tensor([[[0.3, -0.2], [-0.2, 0.3]]]), torch.tensor([[[30.0, 30.0], [90.0, 100.0]]])
    hints = paint_values(values, centers, torch.tensor([[4, 4]]), torch.tensor([[True, True]]), 128, 128)
    full = spread_hints(lightness, model_chroma, hints)
    shrunk = spread_hints(lightness, model_chroma, hints, HintSpread(work_size=32))
    assert (shrunk - full).abs().max() < 0.03 and full.abs().max() > 0.25


@pytest.mark.parametrize("field", ["reach", "lightness_sigma", "chroma_sigma", "keep_weight", "grid", "work_size"])
def test_a_setting_of_zero_is_refused_naming_it(field):
    with pytest.raises(ConfigError, match=f"hint spread {field}=0 must be above 0"):
        HintSpread(**{field: 0})
