"""Score checkpoints with the colorization papers' protocol: a markdown table, a JSON summary, a per-image CSV.

Each image's shorter side is resized to --size and its center cropped to a square; every checkpoint colors
it from its lightness alone and is compared with the original by PSNR, SSIM, CIEDE2000, colorfulness (CF)
and ΔCF. A ``gray`` row (ab = 0) and the ground truth's colorfulness are the reference points.

    python scripts/evaluate.py --data ../shared/data/val --out eval \\
        --checkpoint runs/quickstart/checkpoints/pretrain/best.pt \\
        --checkpoint runs/quickstart/checkpoints/gan/best.pt

``--hints 0 1 2 5 10 20 50 100`` scores every model at each count of hints per image, drawn from the truth by
Zhang et al.'s protocol (6 x 6 patches at 256 px, scaled with the render size, holding the truth's mean colour,
centres around the middle with sigma a quarter of the side; the same positions for every checkpoint), and
prints a PSNR table beside Zhang et al.'s published figures. The hints go as in ``pix2color-infer --hints``: to
a model trained with ``model.hints``, then spread after it (:mod:`pix2color.hint_spread`);
``--no-hint-spread`` scores what the model alone makes of them (models without hints then get the 0 row only).

``--video CLIP [CLIP ...] [--truth COLOR_CLIP]`` measures flicker instead: CDC, warp error and colorfulness
of each clip (e.g. one colorized with ``--temporal off`` and one with ``flow``), PSNR against the color
original, and the original's own row (see :mod:`pix2color.flicker`):

    python scripts/evaluate.py --video colored/off.mp4 colored/flow.mp4 --truth film_in_color.mp4
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from pix2color import metrics
from pix2color.commands.common import run_cli
from pix2color.commands.model_flags import add_model_args, at_least, colorizers_from_args
from pix2color.data import list_images
from pix2color.errors import DataError
from pix2color.evaluation import GRAY, TRUTH, ZHANG_PSNR, hinted_label, iter_batches, predict_with_hints
from pix2color.inference import Colorizer
from pix2color.metric_names import METRIC_SPECS
from pix2color.runtime import resolve_device
from pix2color.viz import gray_rgb

# The table's columns: the per-image metrics, and ΔCF, which exists only for a whole set; in METRIC_SPECS' order.
COLUMNS = [name for name in METRIC_SPECS if name in metrics.METRICS or name == "delta_cf"]


@dataclass
class Scores:
    """Per-image metrics of one evaluation.

    Attributes:
        files: the N images that could be read, in order.
        rows: row label (``gray`` or a checkpoint's) -> metric name -> (N,) values.
        truth_colorfulness: (N,) colorfulness of the ground truth.
    """

    files: list[Path]
    rows: dict[str, dict[str, Tensor]]
    truth_colorfulness: Tensor

    def summaries(self) -> dict[str, dict[str, float]]:
        """Row label -> metric means and ΔCF; the ground truth's row holds its colorfulness."""
        rows = {label: metrics.summarize(values, self.truth_colorfulness) for label, values in self.rows.items()}
        return rows | {TRUTH: {"colorfulness": self.truth_colorfulness.double().mean().item()}}


@torch.inference_mode()
def score(
    colorizers: dict[str, Colorizer],
    batches: Iterator[tuple[list[Path], Tensor]],
    device,
    hint_counts: Sequence[int] = (0,),
) -> Scores:
    """Metrics of the gray baseline and every colorizer against the truth, image by image; with ``hint_counts``
    other than (0,), a row per count for each colorizer that takes hints (:func:`hinted_label`).

    Raises:
        DataError: no image could be read.
    """
    files, truth_cf, batch_rows = [], [], {}
    for index, (names, batch) in enumerate(batches):
        truth = batch.to(device)
        preds = {GRAY: gray_rgb(truth)} | predictions(colorizers, truth, hint_counts, index)
        for label, pred in preds.items():
            batch_rows.setdefault(label, []).append(
                {name: v.cpu() for name, v in metrics.image_metrics(pred, truth).items()}
            )
        truth_cf.append(metrics.colorfulness(truth).cpu())
        files += names
    if not files:
        raise DataError("none of the images could be read; check the files the warnings above name.")
    rows = {
        label: {name: torch.cat([b[name] for b in parts]) for name in parts[0]} for label, parts in batch_rows.items()
    }
    return Scores(files, rows, torch.cat(truth_cf))


def predictions(
    colorizers: dict[str, Colorizer], truth: Tensor, hint_counts: Sequence[int], seed: int
) -> dict[str, Tensor]:
    """Row label -> each colorizer's (B, 3, S, S) uint8 output, at each hint count it can take."""
    if tuple(hint_counts) == (0,):
        return {label: colorizer.predict_rgb(truth) for label, colorizer in colorizers.items()}
    rows = {}
    for label, colorizer in colorizers.items():
        counts = hint_counts if colorizer.accepts_hints else [0]
        for count, (rgb, _) in predict_with_hints(colorizer, truth, counts, seed).items():
            rows[hinted_label(label, count)] = rgb
    return rows


def hints_table(summaries: dict[str, dict[str, float]], labels: Sequence[str], hint_counts: Sequence[int]) -> str:
    """PSNR by hint count (rows) and checkpoint (columns), beside Zhang et al.'s published PSNR."""
    lines = ["| hints | " + " | ".join(f"{label} PSNR" for label in labels) + " | Zhang et al. 2017 PSNR |"]
    lines.append("|---:|" + "---:|" * (len(labels) + 1))
    for count in hint_counts:
        cells = [summaries.get(hinted_label(label, count), {}).get("psnr") for label in labels]
        zhang = ZHANG_PSNR.get(count)
        row = [f"{value:.2f}" if value is not None else "–" for value in (*cells, zhang)]
        lines.append(f"| {count} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def markdown_table(summaries: dict[str, dict[str, float]]) -> str:
    """One row per summary; metrics a row lacks are shown as a dash. Arrows say which way is better."""
    specs = {name: METRIC_SPECS[name] for name in COLUMNS}
    headers = [spec.label + (" ↑" if spec.higher_is_better else " ↓") for spec in specs.values()]
    lines = ["| model | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(specs)]
    for label, summary in summaries.items():
        cells = [f"{summary[name]:.{spec.digits}f}" if name in summary else "–" for name, spec in specs.items()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_reports(out: Path, scores: Scores, report: str, summary: dict) -> None:
    """results.md (the report), summary.json and per_image.csv in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(report + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    names = [name for name in COLUMNS if name in metrics.METRICS]  # ΔCF exists only for a whole set
    with open(out / "per_image.csv", "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "model", *names])
        for i, path in enumerate(scores.files):
            for label, values in scores.rows.items():
                writer.writerow([path, label, *(f"{values[name][i].item():.6g}" for name in names)])
            truth_cf = f"{scores.truth_colorfulness[i].item():.6g}"
            writer.writerow([path, TRUTH, *(truth_cf if name == "colorfulness" else "" for name in names)])


def evaluate(args: argparse.Namespace) -> int:
    files = list_images(args.data)[: args.limit or None]
    colorizers = colorizers_from_args(args)
    batches = iter_batches(files, args.size, args.batch_size, args.workers)
    args.hints = list(dict.fromkeys(args.hints))  # each count once, in the order given
    scores = score(colorizers, batches, resolve_device(args.device), args.hints)
    summaries = scores.summaries()
    skipped = metrics.optional_metrics_status()
    swept = tuple(args.hints) != (0,)
    given = f"with {', '.join(map(str, args.hints))} hints from the truth" if swept else "from L alone"
    report = "\n".join(
        [
            f"{len(scores.files)} images from {', '.join(args.data)}, shorter side resized to {args.size} and "
            f"center-cropped to {args.size}x{args.size}; colorized {given}.",
            "",
            markdown_table(summaries),
            "",
            *([hints_table(summaries, list(colorizers), args.hints), ""] if swept else []),
            *(f"{name.upper()}: {status}" for name, status in skipped.items()),
        ]
    )
    print(report)
    summary = {
        "data": args.data,
        "size": args.size,
        "images": len(scores.files),
        "unreadable": [str(f) for f in sorted(set(files) - set(scores.files))],
        "checkpoints": {label: str(path) for label, path in zip(colorizers, args.checkpoint, strict=True)},
        "hints": args.hints,
        "hint_spread": args.hint_spread,
        "results": summaries,
        "optional_metrics": skipped,
    }
    write_reports(args.out, scores, report, summary)
    print(f"wrote {args.out / 'results.md'}, summary.json and per_image.csv", file=sys.stderr)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    parser.add_argument("--data", nargs="+", required=True, help="image folders, files or .txt/.tsv manifests")
    parser.add_argument("--out", type=Path, default=Path("evaluation"), help="folder for the table, JSON and CSV")
    parser.add_argument("--limit", type=at_least(0), default=0, help="evaluate the first N images only (0: all)")
    parser.add_argument(
        "--hints",
        type=at_least(0),
        nargs="+",
        default=[0],
        help="hints per image to sweep, e.g. 0 1 2 5 10 20 50 100 (every model, unless --no-hint-spread leaves "
        "them to models trained with hints; default 0)",
    )
    return parser.parse_args(argv)


VIDEO_HEADERS = {"frames": "frames", "cdc": "CDC ↓", "warp_error": "warp error ↓", "colorfulness": "colorfulness ↑"}
VIDEO_DIGITS = {"frames": 0, "cdc": 5, "warp_error": 6, "colorfulness": 2, "psnr": 2}


def evaluate_videos(args: argparse.Namespace) -> int:
    """Print (and with --out, write) the flicker table of ``--video`` clips, against ``--truth`` when given."""
    from pix2color.flicker import clip_scores

    rows = {str(clip): clip_scores(clip, args.truth, args.limit) for clip in args.video}
    if args.truth is not None:
        rows[TRUTH] = clip_scores(args.truth, limit=args.limit)
    headers = VIDEO_HEADERS | ({"psnr": "PSNR ↑"} if args.truth is not None else {})
    lines = ["| clip | " + " | ".join(headers.values()) + " |", "|---|" + "---:|" * len(headers)]
    for label, scores in rows.items():
        cells = [f"{scores[name]:.{VIDEO_DIGITS[name]}f}" if name in scores else "–" for name in headers]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "video_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def parse_video_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure the flicker of colorized clips (CDC, warp error).")
    parser.add_argument("--video", nargs="+", required=True, type=Path, help="clips: files or frames/%%06d.png")
    parser.add_argument("--truth", type=Path, help="the color original: adds PSNR and its own row")
    parser.add_argument("--limit", type=at_least(0), default=0, help="the first N frames only (0: all)")
    parser.add_argument("--out", type=Path, help="also write video_summary.json here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--video" in argv:
        video_args = parse_video_args(argv)
        return run_cli(lambda: evaluate_videos(video_args))
    args = parse_args(argv)
    return run_cli(lambda: evaluate(args))


if __name__ == "__main__":
    sys.exit(main())
