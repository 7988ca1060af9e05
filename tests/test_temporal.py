"""Temporal smoothing: ema and flow blending, reset at a scene cut, state carried across processes, checks."""

import pytest
import torch

from pix2color.errors import ConfigError
from pix2color.temporal import TemporalSmoother


def scene(level: float, frames: int, size: int = 32) -> torch.Tensor:
    """Lightness (T, 1, S, S): a textured frame around ``level`` drifting one pixel a frame."""
    texture = torch.linspace(-0.2, 0.2, size).repeat(size, 1) + level
    return torch.stack([texture.roll(t, dims=1)[None] for t in range(frames)])


def test_ema_blends_with_the_previous_frame():
    smoother = TemporalSmoother("ema", strength=0.5)
    lightness = scene(0.0, 3)
    chroma = torch.stack([torch.full((2, 32, 32), value) for value in (0.0, 1.0, 1.0)])
    out = smoother(lightness, chroma)
    assert out[:, 0, 0, 0].tolist() == pytest.approx([0.0, 0.5, 0.75])


def test_a_cut_resets_and_later_frames_take_nothing_from_before_it():
    lightness = torch.cat([scene(-0.6, 5), scene(0.6, 5)])
    chroma = torch.randn(10, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    for mode in ("ema", "flow"):
        smoother = TemporalSmoother(mode)
        out = smoother(lightness, chroma)
        alone = TemporalSmoother(mode)(lightness[5:], chroma[5:])
        assert smoother.cuts == 1
        torch.testing.assert_close(out[5], chroma[5], rtol=0, atol=0)
        torch.testing.assert_close(out[5:], alone, rtol=0, atol=0)
        assert not torch.equal(out[6:], chroma[6:])


def test_state_dict_continues_a_clip_exactly():
    lightness, chroma = scene(0.0, 8), torch.randn(8, 2, 32, 32, generator=torch.Generator().manual_seed(1))
    whole = TemporalSmoother("flow")(lightness, chroma)
    first = TemporalSmoother("flow")
    head = first(lightness[:4], chroma[:4])
    second = TemporalSmoother("flow")
    second.load_state_dict(first.state_dict())
    torch.testing.assert_close(torch.cat([head, second(lightness[4:], chroma[4:])]), whole, rtol=0, atol=0)


def test_off_returns_the_chroma_and_bad_settings_raise():
    chroma = torch.randn(2, 2, 32, 32)
    assert TemporalSmoother("off")(scene(0.0, 2), chroma) is chroma
    for kwargs in ({"mode": "blur"}, {"strength": 1.0}, {"scene_cut": 0.0}):
        with pytest.raises(ConfigError):
            TemporalSmoother(**kwargs)
