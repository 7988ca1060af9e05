"""Colour hints as the generator reads them (``model.hints``): square patches of chroma, and a mask of where they are.

A hint is a square of about ``size`` pixels around (y, x) holding one chroma (always at least the pixel of
its centre); the model reads a (B, 3, H, W)
tensor: the hint chroma (0 where there is no hint), then a 0/1 mask. Training draws hints from the truth as
Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors") did: each patch holds
its region's mean true chroma, the count per image is geometric, the centres are drawn around the image centre.
Everything runs batched on the chroma's device, from a :class:`torch.Generator` the caller seeds.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pix2color.config import HintsConfig

HINT_CHANNELS = 3  # the hint chroma (2) and its mask (1)
# Zhang et al.'s evaluation (richzhang/colorization-pytorch, test_sweep.py): 6 x 6 patches on 256 x 256 photos,
# centres around the middle with sigma a quarter of the side
EVAL_PATCH, EVAL_REFERENCE, EVAL_SIGMA = 6, 256, 0.25


def paint_hints(chroma: Tensor, centers: Tensor, sizes: Tensor, present: Tensor) -> Tensor:
    """Hints holding the mean of ``chroma`` over each patch, painted in order (a later patch covers an earlier).

    Args:
        chroma: (B, 2, H, W) the chroma the hints are taken from (the truth).
        centers: (B, N, 2) patch centres (y, x) in pixels.
        sizes: (B, N) patch sides in pixels, at least 1.
        present: (B, N) bool, which of the N patches exist.

    Returns:
        (B, 3, H, W): hint chroma (0 outside the patches) and the 0/1 mask, in ``chroma``'s dtype.
    """
    height, width = chroma.shape[-2:]
    boxes = patch_boxes(centers.to(chroma.device), sizes.to(chroma.device), height, width)
    return paint_boxes(box_means(chroma, *boxes), boxes, present.to(chroma.device), height, width)


def paint_values(values: Tensor, centers: Tensor, sizes: Tensor, present: Tensor, height: int, width: int) -> Tensor:
    """Hints holding given chroma ``values`` (B, N, 2) in patches at ``centers`` (B, N, 2) of ``sizes`` (B, N),
    where ``present`` (B, N); a later patch covers an earlier. Returns (B, 3, height, width) on ``values``' device."""
    boxes = patch_boxes(centers.to(values.device), sizes.to(values.device), height, width)
    return paint_boxes(values, boxes, present.to(values.device), height, width)


def patch_boxes(centers: Tensor, sizes: Tensor, height: int, width: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each patch's box (top, left, bottom, right), each (B, N), clipped to a ``height`` x ``width`` image."""
    first = torch.floor(centers - (sizes[..., None] - 1) / 2 + 0.5).long()  # (B, N, 2): the unclipped top-left
    top, left = first[..., 0].clamp(0, height - 1), first[..., 1].clamp(0, width - 1)
    bottom = torch.maximum((first[..., 0] + sizes).clamp(max=height), top + 1)
    right = torch.maximum((first[..., 1] + sizes).clamp(max=width), left + 1)
    return top, left, bottom, right


def paint_boxes(values: Tensor, boxes: tuple[Tensor, ...], present: Tensor, height: int, width: int) -> Tensor:
    """``values`` (B, N, 2) painted into their ``boxes`` where ``present``, in order -> (B, 3, H, W) with mask."""
    if not values.shape[1]:
        return values.new_zeros(values.shape[0], 3, height, width)
    top, left, bottom, right = (edge[..., None, None] for edge in boxes)
    rows = torch.arange(height, device=values.device)[:, None]
    cols = torch.arange(width, device=values.device)[None, :]
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right) & present[..., None, None]
    order = torch.arange(1, values.shape[1] + 1, device=values.device, dtype=torch.int16)[None, :, None, None]
    last = torch.where(inside, order, 0).amax(dim=1).long()  # (B, H, W): 1 + the index of the top patch, 0: none
    picked = torch.gather(values, 1, (last - 1).clamp(min=0).flatten(1)[..., None].expand(-1, -1, 2))
    mask = (last > 0).to(values.dtype)[:, None]
    chroma = picked.transpose(1, 2).reshape(values.shape[0], 2, height, width) * mask
    return torch.cat([chroma, mask], dim=1)


def box_means(chroma: Tensor, top: Tensor, left: Tensor, bottom: Tensor, right: Tensor) -> Tensor:
    """The mean of ``chroma`` (B, 2, H, W) over each box [top, bottom) x [left, right), all (B, N) -> (B, N, 2),
    from a summed-area table (fp64, so large images keep their precision)."""
    table = torch.nn.functional.pad(chroma.double().cumsum(-2).cumsum(-1), (1, 0, 1, 0))  # (B, 2, H + 1, W + 1)
    flat = table.flatten(2)  # (B, 2, (H + 1)(W + 1))
    stride = table.shape[-1]

    def at(y: Tensor, x: Tensor) -> Tensor:
        return torch.gather(flat, 2, (y * stride + x)[:, None, :].expand(-1, 2, -1))  # (B, 2, N)

    sums = at(bottom, right) - at(top, right) - at(bottom, left) + at(top, left)
    area = ((bottom - top) * (right - left)).clamp(min=1)[:, None, :]
    return (sums / area).transpose(1, 2).to(chroma.dtype)


def centers_around_middle(
    batch: int, count: int, height: int, width: int, sigma: float, rng: torch.Generator
) -> Tensor:
    """(batch, count, 2) centres (y, x) drawn from a normal around the image centre with ``sigma`` times each
    side as its standard deviation, clamped into the image."""
    device = rng.device
    noise = torch.randn(batch, count, 2, generator=rng, device=device)
    sides = torch.tensor([height, width], device=device, dtype=noise.dtype)
    centers = (sides - 1) / 2 + noise * sigma * sides
    return torch.minimum(centers.clamp(min=0), sides - 1)


def training_hints(chroma: Tensor, cfg: HintsConfig, rng: torch.Generator) -> Tensor:
    """Hints drawn from the truth for a training batch, as Zhang et al.: per image a geometric count
    (``cfg.stop_probability``; that share of images gets none), capped at ``cfg.max_count``; square patches of
    ``cfg.min_size`` to ``cfg.max_size`` px at ``cfg.reference_size`` (scaled with the crop); centres around
    the middle with sigma ``cfg.center_sigma`` of the side.

    Args:
        chroma: (B, 2, S, S) the true chroma.
        cfg: the ``hints`` section.
        rng: a generator on ``chroma``'s device.

    Returns:
        (B, 3, S, S) hint chroma and mask.
    """
    batch, _, height, width = chroma.shape
    device = chroma.device
    uniform = torch.rand(batch, generator=rng, device=device)
    counts = torch.floor(torch.log1p(-uniform) / torch.log1p(torch.tensor(-cfg.stop_probability, device=device)))
    counts = counts.clamp(max=cfg.max_count).long()  # P(count = k) = (1 - p)^k p
    scale = min(height, width) / cfg.reference_size
    low, high = max(1, round(cfg.min_size * scale)), max(1, round(cfg.max_size * scale))
    sizes = torch.randint(low, high + 1, (batch, cfg.max_count), generator=rng, device=device)
    centers = centers_around_middle(batch, cfg.max_count, height, width, cfg.center_sigma, rng)
    present = torch.arange(cfg.max_count, device=device)[None, :] < counts[:, None]
    return paint_hints(chroma, centers, sizes, present)


def fixed_count_hints(chroma: Tensor, count: int, size: int, sigma: float, rng: torch.Generator) -> Tensor:
    """``count`` hints of ``size`` px per image at centres drawn around the middle (sigma ``sigma`` of the side),
    each holding its patch's mean true chroma: the evaluation protocol of Zhang et al. (0 gives no hints).

    Args:
        chroma: (B, 2, H, W) the true chroma.
        count: hints per image.
        size: patch side in pixels.
        sigma: the centres' standard deviation as a share of each side.
        rng: a generator on any device (the CPU's gives the same positions on every device).

    Returns:
        (B, 3, H, W) hint chroma and mask.
    """
    batch, _, height, width = chroma.shape
    centers = centers_around_middle(batch, count, height, width, sigma, rng)
    sizes = torch.full((batch, count), size)
    present = torch.ones(batch, count, dtype=torch.bool)
    return paint_hints(chroma, centers, sizes, present)


def evaluation_hints(chroma: Tensor, count: int, seed: int) -> Tensor:
    """``count`` hints per image by Zhang et al.'s evaluation protocol (:data:`EVAL_PATCH` px at 256, scaled
    with the side), drawn on the CPU from ``seed``, so every checkpoint and device gets the same positions.

    Args:
        chroma: (B, 2, H, W) the true chroma.
        count: hints per image (0: none).
        seed: seeds the positions, e.g. the batch's index in the evaluation.

    Returns:
        (B, 3, H, W) hint chroma and mask on ``chroma``'s device.
    """
    size = max(1, round(EVAL_PATCH * min(chroma.shape[-2:]) / EVAL_REFERENCE))
    return fixed_count_hints(chroma, count, size, EVAL_SIGMA, torch.Generator().manual_seed(seed))
