"""Validation: the val set coloured through :class:`pix2color.inference.Colorizer`, as ``evaluate.py`` does.

So the PSNR that picks best.pt is the PSNR ``scripts/evaluate.py`` prints for that checkpoint on the same
images (same crops, batch size and precision). The first ``data.grid_images`` go into a comparison grid.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from pix2color import color, metrics, viz
from pix2color.config import Config
from pix2color.errors import DataError
from pix2color.hints import evaluation_hints
from pix2color.inference import Colorizer

VAL_HINTS = 10  # a model that takes hints is also validated with this many per image (names ending "_10_hints")


def val_colorizer(generator: nn.Module, cfg: Config, device: torch.device) -> Colorizer:
    """A Colorizer on a copy of ``generator`` (the training model keeps its mode and memory format), without the
    hint spread: validation with hints measures what the model itself learned to make of them."""
    batch = cfg.train.batch_size
    generator = copy.deepcopy(generator)
    return Colorizer(generator, cfg.color.space, cfg.data.size, device=device, batch_size=batch, hint_spread=None)


@torch.no_grad()
def validate(
    colorizer: Colorizer, loader: DataLoader, grid_images: int, label: str
) -> tuple[dict[str, float], Tensor | None]:
    """Metrics over the val set and its comparison grid, whose prediction column is headed ``label``.

    Returns:
        name -> mean over the images (psnr, ssim, colorfulness, ciede2000, l1 on chroma, delta_cf, and
        psnr_gray: the PSNR of the gray images; for a model that takes hints, psnr, ssim, colorfulness,
        ciede2000 and l1 with :data:`VAL_HINTS` hints too, named ``NAME_10_hints``), and a (3, H, W) uint8 grid
        of gray | prediction | truth, or None when
        ``grid_images`` is 0.

    Raises:
        DataError: no validation image could be decoded.
    """
    per_image: dict[str, list[Tensor]] = {}
    columns: list[list[Tensor]] = [[], [], []]
    for index, (rgb, _) in enumerate(loader):
        if len(rgb) == 0:
            continue
        truth = rgb.to(colorizer.device)
        pred, l1 = predict(colorizer, truth)
        values = metrics.image_metrics(pred, truth) | {"l1": l1}
        if colorizer.takes_hints:
            values |= hinted_metrics(colorizer, truth, index)
        values["psnr_gray"] = metrics.psnr(viz.gray_rgb(truth), truth)  # the floor the score measures from
        values["target_colorfulness"] = metrics.colorfulness(truth)
        for name, value in values.items():
            per_image.setdefault(name, []).append(value.cpu())
        collect_grid(columns, truth, pred, grid_images)
    if not per_image:
        raise DataError("no validation image could be decoded (see the warnings above); fix or replace data.val.")
    values = {name: torch.cat(chunks) for name, chunks in per_image.items()}
    target_cf = values.pop("target_colorfulness")
    grid = viz.comparison_grid([torch.cat(c) for c in columns], ["gray", label, "truth"]) if columns[0] else None
    return metrics.summarize(values, target_cf), grid


def predict(colorizer: Colorizer, truth: Tensor, hint_count: int = 0, batch_index: int = 0) -> tuple[Tensor, Tensor]:
    """``colorizer.predict_rgb(truth)`` and the per-image L1 of its chroma. truth: (B, 3, S, S) uint8.

    With ``hint_count`` the model also gets that many hints per image from the truth, drawn as
    ``scripts/evaluate.py --hints`` draws them, seeded by ``batch_index`` (the same ones every validation).

    Returns:
        (B, 3, S, S) uint8 prediction and (B,) mean absolute chroma error (normalised units).
    """
    _, true_chroma = color.rgb_to_l_chroma(truth, colorizer.space)
    hints = evaluation_hints(true_chroma, hint_count, batch_index) if hint_count else None
    chroma = colorizer.predict_chroma(colorizer.render_lightness(truth), hints=hints)
    l1 = (chroma - true_chroma).abs().mean(dim=(1, 2, 3))
    return colorizer.join(truth, chroma), l1


def hinted_metrics(colorizer: Colorizer, truth: Tensor, batch_index: int) -> dict[str, Tensor]:
    """The per-image metrics and chroma L1 with :data:`VAL_HINTS` hints from the truth, named ``NAME_10_hints``."""
    pred, l1 = predict(colorizer, truth, VAL_HINTS, batch_index)
    values = metrics.image_metrics(pred, truth) | {"l1": l1}
    return {f"{name}_{VAL_HINTS}_hints": value for name, value in values.items()}


def collect_grid(columns: list[list[Tensor]], truth: Tensor, pred: Tensor, limit: int) -> None:
    """Keep the first ``limit`` val images as gray | prediction | truth."""
    take = max(0, limit - sum(len(chunk) for chunk in columns[0]))
    if take:
        for column, images in zip(columns, (viz.gray_rgb(truth[:take]), pred[:take], truth[:take]), strict=True):
            column.append(images.cpu())
