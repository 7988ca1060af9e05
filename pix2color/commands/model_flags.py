"""The flags ``scripts/evaluate.py`` and ``scripts/compare.py`` share: checkpoints, labels, sizes, device."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

from pix2color.commands.common import add_hint_spread_arg
from pix2color.config import Device
from pix2color.evaluation import load_colorizers
from pix2color.inference import Colorizer


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """Add the checkpoints, their labels and saturations, the crop and render sizes, batch, device, workers, and
    whether hints are spread after the model."""
    parser.add_argument("--checkpoint", action="append", required=True, type=Path, help="a .pt file; repeat it")
    parser.add_argument("--labels", nargs="+", help="one name per checkpoint (default: run/stage/file)")
    parser.add_argument("--size", type=at_least(32), default=256, help="crop side after resizing the shorter side")
    parser.add_argument(
        "--render-size", type=at_least(32), help="square the model runs at (default: its training size)"
    )
    parser.add_argument(
        "--saturation",
        type=float,
        nargs="+",
        default=[1.0],
        help="factor on the predicted chroma: one for every checkpoint, or one each (default 1, as trained)",
    )
    parser.add_argument("--batch-size", type=at_least(1), default=16)
    parser.add_argument("--device", default="auto", choices=typing.get_args(Device))
    parser.add_argument("--workers", type=at_least(0), default=2, help="image decoding processes (0: in this one)")
    add_hint_spread_arg(parser)


def at_least(low: int):
    """An argparse type: an int no smaller than ``low``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {low}")
        return value

    return parse


def colorizers_from_args(args: argparse.Namespace) -> dict[str, Colorizer]:
    """Label -> Colorizer for the flags of :func:`add_model_args`, by :func:`load_colorizers`.

    Raises:
        UserError: bad labels or saturations; CheckpointError for a bad checkpoint.
    """
    return load_colorizers(
        args.checkpoint, args.labels, args.saturation, args.device, args.render_size, args.batch_size, args.hint_spread
    )
