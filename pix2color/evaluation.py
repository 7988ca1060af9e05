"""What scoring and comparing checkpoints share: the checkpoints as labelled Colorizers, the images as crops.

``scripts/evaluate.py`` scores them, ``scripts/compare.py`` draws them side by side; both label their rows
or columns ``gray`` (ab = 0), one per checkpoint, and ``ground truth``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pix2color import color
from pix2color.data import ImageDataset
from pix2color.errors import UserError
from pix2color.hints import evaluation_hints
from pix2color.inference import Colorizer

GRAY = "gray"
TRUTH = "ground truth"
# Zhang et al. 2017, Table 1 (ImageNet val, 1,000 photos at 256 px, random 6 x 6 truth-mean hints): PSNR by count
ZHANG_PSNR = {0: 24.43, 1: 25.37, 2: 26.20, 5: 27.39, 10: 28.42, 20: 29.34, 50: 30.42, 100: 31.13}


def predict_with_hints(
    colorizer: Colorizer, truth: Tensor, counts: Sequence[int], seed: int
) -> dict[int, tuple[Tensor, Tensor | None]]:
    """Hint count -> (the colorizer's (B, 3, H, W) uint8 colours of ``truth`` given that many hints from the truth
    by Zhang et al.'s protocol (:func:`pix2color.hints.evaluation_hints`, positions seeded by ``seed``), the
    (B, 3, S, S) hints at the render size or None for 0); the photos are shrunk and converted once for all counts.

    Args:
        colorizer: the model; its render size and colour space.
        truth: (B, 3, H, W) uint8 photos.
        counts: hint counts per image.
        seed: the positions' seed (the batch's index: the same for every checkpoint).
    """
    lightness, hints_by_count = hinted_inputs(colorizer, truth, counts, seed)
    return {
        count: (colorizer.join(truth, colorizer.predict_chroma(lightness, hints=hints)).contiguous(), hints)
        for count, hints in hints_by_count.items()
    }


def hinted_inputs(
    colorizer: Colorizer, truth: Tensor, counts: Sequence[int], seed: int
) -> tuple[Tensor, dict[int, Tensor | None]]:
    """The (B, 1, S, S) lightness of ``truth`` (B, 3, H, W) uint8 at the colorizer's render size, and per count its
    (B, 3, S, S) hints from the truth by Zhang et al.'s protocol (None for 0); shrunk and converted once."""
    lightness, chroma = color.rgb_to_l_chroma(colorizer.shrink(truth), colorizer.space)
    return lightness, {count: evaluation_hints(chroma, count, seed) if count else None for count in counts}


def hinted_label(label: str, count: int) -> str:
    """The row or column of a checkpoint given ``count`` hints per image."""
    return f"{label}, {count} hint{'s' if count != 1 else ''}"


def checkpoint_label(path: Path) -> str:
    """``RUN/STAGE/NAME`` for RUN/checkpoints/STAGE/NAME.pt, else ``FOLDER/NAME``."""
    parts = path.with_suffix("").parts
    if len(parts) >= 4 and parts[-3] == "checkpoints":
        return "/".join((parts[-4], parts[-2], parts[-1]))
    return "/".join(parts[-2:])


def load_colorizers(
    checkpoints: Sequence[Path],
    labels: Sequence[str] | None = None,
    saturation: Sequence[float] = (1.0,),
    device: str = "auto",
    render_size: int | None = None,
    batch_size: int = 16,
    with_hint_spread: bool = True,
) -> dict[str, Colorizer]:
    """Label -> Colorizer for each checkpoint, labelled by ``labels`` or :func:`checkpoint_label`.

    Args:
        checkpoints: checkpoint files or release folders.
        labels: one distinct name per checkpoint, other than ``gray`` and ``ground truth``.
        saturation: the factor on the predicted chroma, one for every checkpoint or one each.
        device: where the models run ("auto", "cpu", "cuda", ...).
        render_size: the square the models run at; default: each one's training size.
        batch_size: images per forward pass.
        with_hint_spread: spread colour hints' corrections after each model (False: the models' own use alone).

    Raises:
        UserError: labels that are missing, extra or repeated; saturations of the wrong count or below 0;
            CheckpointError for a bad checkpoint.
    """
    labels = labels or [checkpoint_label(path) for path in checkpoints]
    if len(labels) != len(checkpoints) or len(set(labels)) != len(labels) or {GRAY, TRUTH} & set(labels):
        raise UserError(
            f"need {len(checkpoints)} distinct labels other than '{GRAY}' and '{TRUTH}' for the checkpoints, "
            f"got {list(labels)}; pass them with --labels."
        )
    saturations = list(saturation) * len(checkpoints) if len(saturation) == 1 else saturation
    if len(saturations) != len(checkpoints) or min(saturations) < 0:
        raise UserError(
            f"--saturation {' '.join(map(str, saturation))}: give one factor of 0 or more for every "
            f"checkpoint, or one per --checkpoint ({len(checkpoints)})."
        )
    return {
        label: Colorizer.from_checkpoint(
            path, device, render_size, factor, batch_size=batch_size, with_hint_spread=with_hint_spread
        )
        for label, path, factor in zip(labels, checkpoints, saturations, strict=True)
    }


def iter_batches(
    files: Sequence[Path], size: int, batch_size: int, workers: int
) -> Iterator[tuple[list[Path], Tensor]]:
    """Center crops of ``files`` in batches: (the readable files, uint8 (B, 3, size, size)).

    Each image's shorter side is resized to ``size``, then its center cropped to a square. Unreadable files
    are left out after a one-line warning naming each.
    """
    dataset = ImageDataset(files, size, train=False)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=list)
    for start, items in zip(range(0, len(files), batch_size), loader, strict=True):
        good = [i for i, item in enumerate(items) if item is not None]
        if good:
            yield [files[start + i] for i in good], torch.stack([items[i] for i in good])
