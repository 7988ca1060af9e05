"""Comparison grids: rows are images, columns are e.g. gray | stage 1 | stage 2 | truth.

Tiles are laid out by ``torchvision.utils.make_grid`` on a white background; a label strip on top names
each column and an optional caption under each tile carries its numbers ("PSNR 23.1 CF 31.2").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid

from pix2color.color import l_chroma_to_rgb, rgb_to_l_chroma, to_uint8
from pix2color.files import atomic_write

PADDING = 4  # white pixels between and around tiles
LABEL_HEIGHT = 24  # the strip naming the columns
CAPTION_HEIGHT = 18  # the strip under each tile when captions are given
FONT_SIZE = 14
WHITE = 255
TEXT_COLOR = (0, 0, 0)


def comparison_grid(
    columns: Sequence[Tensor], labels: Sequence[str], captions: Sequence[Sequence[str]] | None = None
) -> Tensor:
    """Lay out images side by side with column labels and optional per-tile captions.

    Args:
        columns: C tensors, each (N, 3, H, W) uint8 with the same N, H, W; row i shows image i.
        labels: C column names, drawn centred above each column.
        captions: C sequences of N strings, ``captions[col][row]`` drawn under that tile; None for none.

    Returns:
        (3, LABEL_HEIGHT + N·(H + h + PADDING) + PADDING, C·(W + PADDING) + PADDING) uint8 on the CPU,
        with h = CAPTION_HEIGHT when ``captions`` is given, else 0.
    """
    _check_columns(columns, labels, captions)
    rows, _, height, width = columns[0].shape
    tiles = torch.stack([c.detach().cpu() for c in columns], dim=1).flatten(0, 1)  # (N*C, 3, H, W) row-major
    caption_height = CAPTION_HEIGHT if captions is not None else 0
    tiles = F.pad(tiles, (0, 0, 0, caption_height), value=WHITE)
    grid = make_grid(tiles, nrow=len(columns), padding=PADDING, pad_value=WHITE)
    canvas = Image.fromarray(F.pad(grid, (0, 0, LABEL_HEIGHT, 0), value=WHITE).permute(1, 2, 0).numpy())
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=FONT_SIZE)
    step_x, step_y = width + PADDING, height + caption_height + PADDING
    for col, label in enumerate(labels):
        _draw_centered(draw, font, label, PADDING + col * step_x, 0, width, LABEL_HEIGHT)
        for row, caption in enumerate(captions[col] if captions is not None else ()):
            top = LABEL_HEIGHT + PADDING + row * step_y + height
            _draw_centered(draw, font, caption, PADDING + col * step_x, top, width, caption_height)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)


def save_grid(grid: Tensor, path: str | Path) -> None:
    """Write a (3, H, W) uint8 grid as a PNG, atomically: a temp file beside ``path``, then a rename."""
    with atomic_write(path) as handle:
        Image.fromarray(grid.detach().cpu().permute(1, 2, 0).numpy()).save(handle, format="PNG")


def gray_rgb(rgb: Tensor) -> Tensor:
    """The lightness of RGB images shown as gray RGB (ab = 0), exactly R = G = B.

    Args:
        rgb: (B, 3, H, W) uint8.

    Returns:
        (B, 3, H, W) uint8 on the same device.
    """
    lightness, chroma = rgb_to_l_chroma(rgb, "lab")
    gray = l_chroma_to_rgb(lightness, torch.zeros_like(chroma), "lab").mean(dim=1, keepdim=True)
    return to_uint8(gray).expand(-1, 3, -1, -1).contiguous()


def mark_hints(rgb: Tensor, hints: Tensor) -> Tensor:
    """Outline each hint patch in white on the images it was given to, so a grid shows where the hints were.

    Args:
        rgb: (B, 3, H, W) uint8 images.
        hints: (B, 3, S, S) hint chroma and mask at the square the model ran at.

    Returns:
        (B, 3, H, W) uint8: ``rgb`` with a one-pixel white ring around every patch.
    """
    mask = F.interpolate(hints[:, 2:].float(), size=rgb.shape[-2:], mode="nearest").to(rgb.device)
    ring = (F.max_pool2d(mask, 3, stride=1, padding=1) - mask) > 0
    return torch.where(ring, torch.full_like(rgb, 255), rgb)


def _draw_centered(
    draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, text: str, left: int, top: int, width: int, height: int
) -> None:
    """Draw ``text`` centred in a box, cut with an ellipsis when wider than the box."""
    text = _fit(draw, font, text, width)
    draw.text((left + width / 2, top + height / 2), text, fill=TEXT_COLOR, font=font, anchor="mm")


def _fit(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, text: str, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _check_columns(columns: Sequence[Tensor], labels: Sequence[str], captions: Sequence[Sequence[str]] | None) -> None:
    if not columns or len(labels) != len(columns):
        raise ValueError(f"need one label per column: {len(columns)} columns, {len(labels)} labels")
    shape = columns[0].shape
    for col in columns:
        if col.dtype != torch.uint8 or col.dim() != 4 or col.shape[1] != 3 or col.shape != shape:
            raise ValueError(f"columns must all be (N, 3, H, W) uint8 of one shape, got {tuple(col.shape)} {col.dtype}")
    if captions is not None and (len(captions) != len(columns) or any(len(c) != shape[0] for c in captions)):
        raise ValueError(f"captions must be {len(columns)} columns of {shape[0]} strings each")
