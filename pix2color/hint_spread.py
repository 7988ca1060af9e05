"""Hints carried across the photo after the model: each hint's correction spread to the pixels that resemble it.

A network trained for minutes on a CPU uses a hint only in a small patch around it (docs/hints.md), while the
colour it asks for usually belongs to a whole object. Here the difference between each hint and the model's
chroma under it is spread over the image by a cross-bilateral interpolation (the classic prior of scribble
colorization, Levin et al. 2004: nearby pixels of like lightness share their colour): every hinted cell weighs
each pixel by its distance, and by how alike their lightness and the model's chroma are, against a fixed weight
that keeps the model's own colour where no hint is close or alike. Inside a hint the output is the hint.

It runs batched on the chroma's device, at the render size up to :attr:`HintSpread.work_size`, on hinted cells
(the hinted pixels pooled on a grid), a few cells at a time, so memory and time stay bounded whatever the
number and size of the hints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pix2color.errors import ConfigError

CELLS_PER_CHUNK = 16  # hinted cells weighed against the whole image at once


@dataclass(frozen=True)
class HintSpread:
    """How far and to what a hint's correction spreads.

    Attributes:
        reach: the spatial standard deviation, as a share of the image's shorter side.
        lightness_sigma: the standard deviation of lightness differences, in the model's L units ([-1, 1]).
        chroma_sigma: the standard deviation of differences of the model's chroma, in its units ([-1, 1]).
        keep_weight: the weight of the model's own colour against the hints' (0 < w; smaller spreads further).
        grid: hinted pixels are pooled in square cells of the shorter side / ``grid`` pixels (at least one).
        work_size: the spread is worked out with the image's shorter side at most this, and its correction
            scaled up (bilinear) to the image: chroma varies slowly, and the cost grows with pixels times cells.
    """

    reach: float = 0.2
    lightness_sigma: float = 0.1
    chroma_sigma: float = 0.1
    keep_weight: float = 0.01
    grid: int = 32
    work_size: int = 256

    def __post_init__(self):
        for name, value in vars(self).items():
            if not value > 0:
                raise ConfigError(f"hint spread {name}={value} must be above 0.")


def spread_hints(lightness: Tensor, chroma: Tensor, hints: Tensor, spread: HintSpread = HintSpread()) -> Tensor:
    """The model's chroma with each hint's correction spread to the pixels like it, and the hints inside them.

    Args:
        lightness: (B, 1, H, W) the lightness in [-1, 1].
        chroma: (B, 2, H, W) the model's chroma.
        hints: (B, 3, H, W) hint chroma (0 where there is none) and the 0/1 hint mask.
        spread: the reach and the weights.

    Returns:
        (B, 2, H, W) float32 chroma.
    """
    lightness, chroma, hints = lightness.float(), chroma.float(), hints.float()
    size = chroma.shape[-2:]
    scale = min(1.0, spread.work_size / min(size))
    if scale < 1:
        work = tuple(max(1, round(side * scale)) for side in size)
        shrunk = [F.interpolate(x, work, mode="area") for x in (lightness, chroma, hints)]
        correction = F.interpolate(
            spread_correction(*shrunk[:2], shrunk_hints(shrunk[2]), spread), size, mode="bilinear"
        )
    else:
        correction = spread_correction(lightness, chroma, hints, spread)
    return torch.lerp(chroma + correction, hints[:, :2], hints[:, 2:])


def spread_correction(lightness: Tensor, chroma: Tensor, hints: Tensor, spread: HintSpread) -> Tensor:
    """The hints' corrections (hint minus the model's chroma under it) spread over the image, each cell of hints
    weighing each pixel by its likeness, against :attr:`HintSpread.keep_weight` for no change.

    Args:
        lightness: (B, 1, H, W) in [-1, 1].
        chroma: (B, 2, H, W) the model's.
        hints: (B, 3, H, W) hint chroma and the 0/1 mask.
        spread: the settings.

    Returns:
        (B, 2, H, W) the correction to add to ``chroma``.
    """
    guide = guide_features(lightness, chroma, spread)  # (B, G, H, W)
    mask = hints[:, 2:]
    cells, present = hinted_cells(torch.cat([guide, hints[:, :2] - chroma], dim=1), mask, spread.grid)
    correction = torch.zeros_like(chroma)
    total = torch.full_like(mask, spread.keep_weight)
    for part, kept in zip(cells.split(CELLS_PER_CHUNK, 1), present.split(CELLS_PER_CHUNK, 1), strict=True):
        cell_guide, residual = part[..., : guide.shape[1]], part[..., guide.shape[1] :]  # (B, P, G), (B, P, 2)
        weight = torch.exp(-0.5 * squared_distances(guide, cell_guide)) * kept[..., None, None]  # (B, P, H, W)
        correction += torch.einsum("bphw,bpc->bchw", weight, residual)
        total += weight.sum(dim=1, keepdim=True)
    return correction / total


def shrunk_hints(hints: Tensor) -> Tensor:
    """Area-shrunk hints (B, 3, h, w) -> the mean hint chroma over each pixel's hinted part, and 1 where it has
    any (a shrunk mask is a share of a pixel)."""
    mask = hints[:, 2:]
    chroma = hints[:, :2] / mask.clamp_min(torch.finfo(mask.dtype).tiny)
    return torch.cat([chroma * (mask > 0), (mask > 0).to(mask.dtype)], dim=1)


def squared_distances(guide: Tensor, cell_guide: Tensor) -> Tensor:
    """Squared distances (B, P, H, W) between each pixel's features ``guide`` (B, G, H, W) and each cell's
    ``cell_guide`` (B, P, G), without a (B, P, G, H, W) tensor of differences."""
    cross = torch.einsum("bghw,bpg->bphw", guide, cell_guide)
    return (
        guide.square().sum(dim=1, keepdim=True) - 2 * cross + cell_guide.square().sum(-1)[..., None, None]
    ).clamp_min(0)


def guide_features(lightness: Tensor, chroma: Tensor, spread: HintSpread) -> Tensor:
    """(B, 5, H, W): each pixel's position, lightness and chroma, each divided by its standard deviation, so
    that half the squared distance between two pixels' features is the exponent of their weight."""
    batch, _, height, width = lightness.shape
    scale = spread.reach * min(height, width)
    rows = (torch.arange(height, device=lightness.device, dtype=torch.float32) + 0.5) / scale
    cols = (torch.arange(width, device=lightness.device, dtype=torch.float32) + 0.5) / scale
    position = torch.stack(torch.meshgrid(rows, cols, indexing="ij")).expand(batch, -1, -1, -1)
    return torch.cat([position, lightness / spread.lightness_sigma, chroma / spread.chroma_sigma], dim=1)


def hinted_cells(values: Tensor, mask: Tensor, grid: int) -> tuple[Tensor, Tensor]:
    """The mean of ``values`` over the hinted pixels of each square cell (the shorter side / ``grid`` pixels).

    Args:
        values: (B, C, H, W).
        mask: (B, 1, H, W) 1 on hinted pixels.
        grid: cells per side (each at least a pixel).

    Returns:
        (B, P, C) the means of the cells with hints, P the most any image has, and (B, P) which exist.
    """
    stride = max(1, min(mask.shape[-2:]) // grid)
    share = F.avg_pool2d(mask, stride, ceil_mode=True)
    means = F.avg_pool2d(values * mask, stride, ceil_mode=True) / share.clamp_min(torch.finfo(share.dtype).tiny)
    means, present = means.flatten(2).transpose(1, 2), share.flatten(1) > 0  # (B, cells, C), (B, cells)
    order = present.to(torch.uint8).argsort(dim=1, descending=True, stable=True)[:, : int(present.sum(1).max())]
    return torch.gather(means, 1, order[..., None].expand(-1, -1, means.shape[-1])), torch.gather(present, 1, order)
