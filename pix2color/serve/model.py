"""The served model: the checkpoint's generator behind every render size and saturation a request asks for, each
photo with its own colour hints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from pix2color.hint_points import Hint
from pix2color.inference import Colorizer
from pix2color.model_files import ModelFile, read_model_file

MAX_RENDER_SIZE = 1024  # larger squares cost seconds and gigabytes per photo


@dataclass(frozen=True)
class Settings:
    """What a request may choose: the square the model runs at and the factor on its colours."""

    render_size: int
    saturation: float


@dataclass(frozen=True)
class Photo:
    """One photo for the model and its colour hints (points in its own pixels; none: automatic colorization)."""

    image: Image.Image
    hints: tuple[Hint, ...] = ()


class ServedModel:
    """One :class:`Colorizer`, loaded once; each batch runs through it at the batch's settings.

    Args:
        colorizer: built by :meth:`Colorizer.from_checkpoint`; its render size is the default.
        info: what ``GET /v1/model`` reports (see :func:`checkpoint_info`).
    """

    def __init__(self, colorizer: Colorizer, info: dict[str, Any]):
        self.colorizer = colorizer
        self.info = info | {
            "render_size": colorizer.render_size,
            "device": str(colorizer.device),
            "hints": colorizer.accepts_hints,
        }

    @classmethod
    def load(
        cls, checkpoint: str | Path, device: str, render_size: int | None, max_batch: int, with_hint_spread: bool = True
    ) -> ServedModel:
        """Load the checkpoint; one warm-up pass so that the first request is not the slow one. ``with_hint_spread``
        as in :meth:`Colorizer.from_checkpoint`.

        Raises:
            CheckpointError, ConfigError: as :meth:`Colorizer.from_checkpoint`.
        """
        model_file = read_model_file(checkpoint)  # read once: the weights and the training record
        colorizer = Colorizer.from_checkpoint(
            checkpoint, device, render_size, batch_size=max_batch, model=model_file, with_hint_spread=with_hint_spread
        )
        model = cls(colorizer, checkpoint_info(model_file))
        model.colorize(Settings(colorizer.render_size, 1.0), [Photo(Image.new("RGB", (32, 32), (128, 128, 128)))])
        return model

    def colorize(self, settings: Settings, photos: Sequence[Photo]) -> list[Image.Image]:
        """Colour ``photos`` at ``settings``, each with its own hints, in one forward pass (chunks of the batch
        size)."""
        return self.colorizer.colorize_batch(
            [photo.image for photo in photos],
            render_size=settings.render_size,
            saturation=settings.saturation,
            hints=[photo.hints for photo in photos],
        )


def checkpoint_info(model: ModelFile) -> dict[str, Any]:
    """Encoder, stage, step, epoch, training size and validation metrics stored in a checkpoint or release folder."""
    config, record = model.config, model.record
    return {
        "encoder": config.get("model", {}).get("encoder"),
        "stage": record["stage"],
        "step": record["step"],
        "epoch": record["epoch"],
        "training_size": config.get("data", {}).get("size"),
        "color_space": config.get("color", {}).get("space"),
        "metrics": {name: _number(value) for name, value in record["metrics"].items()},
        "max_render_size": MAX_RENDER_SIZE,
    }


def _number(value: Any) -> float | None:
    """A metric as JSON can carry it: NaN and Inf become null."""
    number = float(value)
    return number if math.isfinite(number) else None
