"""Draw a comparison grid: rows are images; columns the gray input, each checkpoint, and the ground truth.

Images are center-cropped to --size as in evaluate.py. The truth column is left out when every input is
near-gray (a black-and-white photo set), since there is no color to compare with. --metrics writes each
tile's PSNR (against the truth) and colorfulness under it; --html writes a page beside the grid with every
image colorized at its full size.

    python scripts/compare.py --images ../shared/data/val --out grid.png --html --metrics \\
        --checkpoint runs/quickstart/checkpoints/pretrain/best.pt \\
        --checkpoint runs/quickstart/checkpoints/gan/best.pt --labels "stage 1" "stage 2"

``--hints N`` adds, after each checkpoint that accepts hints (every one, unless ``--no-hint-spread``), a column
coloured with N hints per image from the truth (by the protocol of ``evaluate.py --hints``, seeded once for the
whole grid), each hint's square outlined in white. ``--hint-file FILE`` adds one with the hints a person
placed: ``pix2color-infer --hints``'s JSON object mapping file names to lists of points in the photos' own pixels
(those outside the centre crop are left out), for photos that have no truth to draw hints from:

    python scripts/compare.py --images ../shared/data/bw --hint-file bw_hints.json --checkpoint best.pt
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from pix2color import metrics
from pix2color.commands.common import run_cli
from pix2color.commands.hint_file import read_hint_file
from pix2color.commands.model_flags import add_model_args, at_least, colorizers_from_args
from pix2color.data import center_box, chroma_score, image_size, list_images, open_image, to_rgb
from pix2color.errors import DataError
from pix2color.evaluation import GRAY, TRUTH, hinted_label, iter_batches, predict_with_hints
from pix2color.hint_points import Hint, hints_tensor
from pix2color.inference import Colorizer
from pix2color.runtime import resolve_device
from pix2color.viz import comparison_grid, gray_rgb, mark_hints, save_grid

GRAY_CHROMA = 2.0  # mean max(RGB) - min(RGB) below which a photo counts as black and white (MANIFEST.tsv)


def is_color_set(truth: Tensor) -> bool:
    """Whether any image of (N, 3, H, W) uint8 has color, by :func:`pix2color.data.chroma_score`."""
    return any(chroma_score(Image.fromarray(image.permute(1, 2, 0).cpu().numpy())) >= GRAY_CHROMA for image in truth)


@torch.inference_mode()
def grid_columns(
    colorizers: dict[str, Colorizer],
    truth: Tensor,
    hint_count: int = 0,
    placed: Sequence[Sequence[Hint]] | None = None,
) -> dict[str, Tensor]:
    """Column label -> (N, 3, H, W) uint8: gray, each colorizer (then, when it accepts hints, the same with
    ``hint_count`` hints from the truth, and with the ``placed`` hints, each image's in its crop's pixels, both
    outlined), and the truth for a color set."""
    columns = {GRAY: gray_rgb(truth)}
    for label, colorizer in colorizers.items():
        columns[label] = colorizer.predict_rgb(truth)
        if not colorizer.accepts_hints:
            continue
        if hint_count:
            hinted, hints = predict_with_hints(colorizer, truth, [hint_count], seed=0)[hint_count]
            columns[hinted_label(label, hint_count)] = mark_hints(hinted, hints)
        if placed is not None:
            hints = placed_hints(colorizer, placed, truth.shape[-1]).to(truth.device)
            columns[f"{label} + placed hints"] = mark_hints(colorizer.predict_rgb(truth, hints=hints), hints)
    return columns | ({TRUTH: truth} if is_color_set(truth) else {})


def placed_hints(colorizer: Colorizer, placed: Sequence[Sequence[Hint]], size: int) -> Tensor:
    """(N, 3, S, S) at the colorizer's render size S: each image's hints, given in its ``size`` crop's pixels."""
    space, render_size = colorizer.space, colorizer.render_size
    return torch.cat([hints_tensor(points, size, size, render_size, space) for points in placed])


def crop_hints(hints: Sequence[Hint], width: int, height: int, size: int) -> list[Hint]:
    """The hints of a ``width`` x ``height`` photo in the pixels of its centre crop at ``size`` (evaluate.py's
    crop, :func:`pix2color.data.center_box`), pixel centres onto pixel centres; those outside the crop left out."""
    left, top, right, _ = center_box(width, height)
    scale = size / (right - left)
    moved = [
        replace(
            hint, x=(hint.x + 0.5 - left) * scale - 0.5, y=(hint.y + 0.5 - top) * scale - 0.5, size=hint.size * scale
        )
        for hint in hints
    ]
    return [hint for hint in moved if 0 <= hint.x + 0.5 < size and 0 <= hint.y + 0.5 < size]


def captions(columns: dict[str, Tensor]) -> list[list[str]]:
    """``captions[col][row]``: colorfulness, and PSNR against the truth column when there is one."""
    truth = columns.get(TRUTH)
    result = []
    for label, images in columns.items():
        cf = metrics.colorfulness(images).tolist()
        if truth is None or label == TRUTH:
            result.append([f"CF {c:.1f}" for c in cf])
        else:
            result.append(
                [f"PSNR {p:.1f} CF {c:.1f}" for p, c in zip(metrics.psnr(images, truth).tolist(), cf, strict=True)]
            )
    return result


def _display_name(path: Path) -> str:
    """The file name as text, with bytes that are not UTF-8 shown as replacement characters."""
    return path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def write_html(page: Path, grid: Path, files: Sequence[Path], colorizers: dict[str, Colorizer]) -> None:
    """A page showing the grid, then every image at full size: gray, each colorizer, the original.

    The full-size images are written as PNGs into ``<page stem>_files/`` beside the page.
    """
    folder = page.with_name(f"{page.stem}_files")
    folder.mkdir(parents=True, exist_ok=True)
    header = "".join(f"<th>{html.escape(label)}</th>" for label in ("image", GRAY, *colorizers, "original"))
    rows = []
    for i, path in enumerate(files):
        original = to_rgb(open_image(path))
        images = {GRAY: _gray_image(original)} | {label: c.colorize(original) for label, c in colorizers.items()}
        cells = []
        for label, image in (images | {"original": original}).items():
            name = f"{i:03d}_{path.stem}_{re.sub(r'[^A-Za-z0-9]+', '_', label)}.png"
            image.save(folder / name)
            src = quote(os.fsencode(f"{folder.name}/{name}"))
            cells.append(f'<td><a href="{src}"><img src="{src}" alt="{html.escape(label)}"></a></td>')
        rows.append(f"<tr><td>{html.escape(_display_name(path))}</td>{''.join(cells)}</tr>")
    page.write_text(
        "<!doctype html>\n<meta charset='utf-8'>\n<title>pix2color comparison</title>\n"
        "<style>body{font-family:sans-serif} td{vertical-align:top} td img{width:320px}</style>\n"
        f"<h1>pix2color comparison</h1>\n<p><img src='{quote(grid.name)}' style='max-width:100%'></p>\n"
        f"<h2>Full size</h2>\n<table>\n<tr>{header}</tr>\n" + "\n".join(rows) + "\n</table>\n"
    )


def _gray_image(image: Image.Image) -> Image.Image:
    rgb = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]
    return Image.fromarray(gray_rgb(rgb)[0].permute(1, 2, 0).numpy())


def compare(args: argparse.Namespace) -> int:
    files = list_images(args.images)[: args.limit or None]
    colorizers = colorizers_from_args(args)
    batches = list(iter_batches(files, args.size, args.batch_size, args.workers))
    if not batches:
        raise DataError("none of the images could be read; check the files the warnings above name.")
    readable = [path for names, _ in batches for path in names]
    truth = torch.cat([batch for _, batch in batches]).to(resolve_device(args.device))
    columns = grid_columns(colorizers, truth, args.hints, _placed(args, readable))
    grid = comparison_grid(list(columns.values()), list(columns), captions(columns) if args.metrics else None)
    save_grid(grid, args.out)
    print(f"wrote {args.out}: {len(readable)} images x {len(columns)} columns ({', '.join(columns)})")
    if args.html:
        page = args.out.with_suffix(".html")
        write_html(page, args.out, readable, colorizers)
        print(f"wrote {page} with the full-size images in {page.stem}_files/")
    return 0


def _placed(args: argparse.Namespace, files: Sequence[Path]) -> list[list[Hint]] | None:
    """Each file's hints from ``--hint-file`` (none for a file it does not name), in its crop's pixels."""
    if args.hint_file is None:
        return None
    by_photo = read_hint_file(args.hint_file, files, flag="--hint-file")
    return [crop_hints(by_photo.get(path, []), *image_size(path), args.size) for path in files]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(parser)
    parser.add_argument("--images", nargs="+", required=True, help="image folders, files or .txt/.tsv manifests")
    parser.add_argument("--out", type=Path, default=Path("grid.png"), help="the grid PNG")
    parser.add_argument("--limit", type=at_least(0), default=8, help="the first N images (0: all); default 8")
    parser.add_argument("--metrics", action="store_true", help="write PSNR and colorfulness under each tile")
    parser.add_argument("--html", action="store_true", help="also write OUT.html with the full-size images")
    parser.add_argument(
        "--hints", type=at_least(0), default=0, metavar="N", help="also colour with N hints per image from the truth"
    )
    parser.add_argument(
        "--hint-file", type=Path, help="also colour with the hints of this JSON file (pix2color-infer --hints' format)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: compare(args))


if __name__ == "__main__":
    sys.exit(main())
