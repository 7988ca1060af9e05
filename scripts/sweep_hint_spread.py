"""PSNR by hint count for a grid of hint spread settings (pix2color.hint_spread.HintSpread) over one checkpoint.

The model runs once per batch, on its own as under the spread; every setting spreads the same hints (by
``evaluate.py --hints``' protocol, the same positions) over that output. Tune on other photos than those you
report: docs/hints.md tuned on ../shared/data/extra and reports ../shared/data/val with ``evaluate.py``
(``--no-hint-spread`` is moot here: the script always spreads the hints itself):

    python scripts/sweep_hint_spread.py --data ../shared/data/extra --checkpoint runs/q/checkpoints/pretrain/best.pt \\
        --reach 0.2 0.3 --keep-weight 0.01 0.05 --lightness-sigma 0.1 0.2 --chroma-sigma 0.1 0.2
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from pix2color import metrics
from pix2color.commands.common import run_cli
from pix2color.commands.model_flags import add_model_args, colorizers_from_args
from pix2color.data import list_images
from pix2color.errors import UserError
from pix2color.evaluation import hinted_inputs, iter_batches
from pix2color.hint_spread import HintSpread, spread_hints
from pix2color.inference import Colorizer

COUNTS = (0, 1, 2, 5, 10, 20, 50, 100)
SWEPT = ("reach", "lightness_sigma", "chroma_sigma", "keep_weight")  # the HintSpread fields the grid varies


@torch.inference_mode()
def sweep(
    colorizer: Colorizer,
    batches: Iterable[tuple[list[Path], Tensor]],
    counts: Sequence[int],
    settings: Sequence[HintSpread],
) -> dict[tuple[int, int], float]:
    """(setting index, count) -> mean PSNR over the images of ``batches``; the model colours on its own, as it
    does under the spread in :class:`~pix2color.inference.Colorizer`, and each setting spreads the hints over it."""
    psnr: dict[tuple[int, int], list[torch.Tensor]] = {}
    for index, (_, truth) in enumerate(batches):
        lightness, hints_by_count = hinted_inputs(colorizer, truth, counts, index)
        automatic = colorizer.predict_chroma(lightness)
        for count, hints in hints_by_count.items():
            for number, setting in enumerate(settings):
                spread = automatic if hints is None else spread_hints(lightness, automatic, hints, setting)
                psnr.setdefault((number, count), []).append(metrics.psnr(colorizer.join(truth, spread), truth))
    return {key: torch.cat(values).mean().item() for key, values in psnr.items()}


def main_sweep(args: argparse.Namespace) -> int:
    """Print the PSNR table of every setting of the grid the flags give."""
    if len(args.checkpoint) != 1:
        raise UserError(f"give one --checkpoint to sweep the spread over, not {len(args.checkpoint)}.")
    args.hint_spread = False  # the script spreads the hints itself, setting by setting
    (colorizer,) = colorizers_from_args(args).values()
    grid = itertools.product(*(getattr(args, name) for name in SWEPT))
    settings = [HintSpread(**dict(zip(SWEPT, values, strict=True))) for values in grid]
    files = list_images(args.data)[: args.limit or None]
    results = sweep(colorizer, iter_batches(files, args.size, args.batch_size, args.workers), args.counts, settings)
    print("| reach | lightness σ | chroma σ | keep | " + " | ".join(f"{c} hints" for c in args.counts) + " |")
    print("|---:|---:|---:|---:|" + "---:|" * len(args.counts))
    for number, setting in enumerate(settings):
        cells = " | ".join(f"{results[number, count]:.2f}" for count in args.counts)
        head = f"{setting.reach:g} | {setting.lightness_sigma:g} | {setting.chroma_sigma:g} | {setting.keep_weight:g}"
        print(f"| {head} | {cells} |")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    parser.add_argument("--data", nargs="+", required=True, help="image folders, files or .txt/.tsv manifests")
    parser.add_argument("--limit", type=int, default=0, help="the first N images only (0: all)")
    parser.add_argument("--counts", type=int, nargs="+", default=list(COUNTS), help="hint counts per image")
    default = HintSpread()
    for name in SWEPT:
        value = getattr(default, name)
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=float, nargs="+", default=[value], help=f"values (default {value:g})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: main_sweep(args))


if __name__ == "__main__":
    sys.exit(main())
