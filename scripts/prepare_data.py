"""Clean a photo collection for colorization training and write seeded train/val manifests.

Drops unreadable files, images whose shorter side is below --min-size, near-grayscale photos (chroma below
--min-chroma: they teach the model to predict gray) and exact duplicates (same bytes; the first in sorted order
is kept). Writes OUT/train.txt and OUT/val.txt (use them as data.train / data.val), OUT/report.tsv (every dropped
file and why) and, with --resize N, JPEG copies with shorter side N in OUT/images that the manifests point at.

    python scripts/prepare_data.py ../shared/data/train --out data/train_clean --resize 288
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from pix2color.commands.common import run_cli
from pix2color.data import (
    REDUCING_GAP,
    RESAMPLE,
    THUMBNAIL,
    chroma_score,
    image_size,
    list_images,
    open_image,
    split_files,
    to_rgb,
)
from pix2color.errors import DataError

JPEG_QUALITY = 95  # copies keep full chroma resolution (4:4:4): chroma is what the model learns


@dataclass(frozen=True)
class Checks:
    """What a file must pass to be kept; ``resize`` > 0 also makes a JPEG copy with that shorter side."""

    min_size: int
    min_chroma: float
    resize: int


@dataclass(frozen=True)
class Result:
    """One file's verdict: an empty ``reason`` means kept; ``jpeg`` holds the resized copy when asked for."""

    path: Path
    digest: str
    reason: str = ""
    detail: str = ""
    jpeg: bytes = b""


def check_file(path: Path, checks: Checks) -> Result:
    """Hash, measure and (with ``checks.resize``) re-encode one file; runs in the worker processes."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        width, height = image_size(path)
        if min(width, height) < checks.min_size:
            return Result(path, digest, "too_small", f"{width}x{height}, shorter side below {checks.min_size}")
        img = to_rgb(open_image(path, min_side=checks.resize or THUMBNAIL))
    except (DataError, OSError) as exc:
        return Result(path, "", "unreadable", str(exc))
    chroma = chroma_score(img)
    if chroma < checks.min_chroma:
        return Result(path, digest, "grayscale", f"chroma {chroma:.2f} below {checks.min_chroma}")
    return Result(path, digest, jpeg=encode_copy(img, checks.resize) if checks.resize else b"")


def encode_copy(img: Image.Image, side: int) -> bytes:
    """JPEG bytes of an RGB image shrunk so its shorter side is ``side`` (smaller images keep their size)."""
    scale = side / min(img.size)
    if scale < 1:
        new_size = (max(side, round(img.width * scale)), max(side, round(img.height * scale)))
        img = img.resize(new_size, RESAMPLE, reducing_gap=REDUCING_GAP)
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def deduplicate(results: Iterable[Result]) -> Iterator[Result]:
    """Mark every kept result whose content was already kept as a duplicate."""
    first: dict[str, Path] = {}
    for result in results:
        if not result.reason and result.digest in first:
            result = replace(result, reason="duplicate", detail=f"same bytes as {first[result.digest]}", jpeg=b"")
        elif not result.reason:
            first[result.digest] = result.path
        yield result


def prepare(sources: Sequence[str], out: Path, checks: Checks, workers: int) -> tuple[list[Path], list[Result]]:
    """Check every image of ``sources`` and write the kept copies; returns the kept paths and the dropped results."""
    files = list_images(sources)
    if checks.resize:
        (out / "images").mkdir(parents=True, exist_ok=True)
    kept, dropped = [], []
    with _mapper(workers) as map_fn:
        for result in deduplicate(map_fn(functools.partial(check_file, checks=checks), files)):
            if result.reason:
                dropped.append(result)
            elif checks.resize:
                copy = out / "images" / f"{result.path.stem}_{result.digest[:12]}.jpg"
                copy.write_bytes(result.jpeg)
                kept.append(copy)
            else:
                kept.append(result.path)
    return kept, dropped


@contextlib.contextmanager
def _mapper(workers: int) -> Iterator[Callable]:
    """``map`` in this process for one worker, else an ordered ``Pool.imap`` over ``workers`` processes."""
    if workers <= 1:
        yield map
        return
    with multiprocessing.Pool(workers) as pool:
        yield functools.partial(pool.imap, chunksize=8)


def write_manifest(path: Path, files: Sequence[Path]) -> None:
    """One path per line, relative to the manifest's folder (as ``list_images`` reads it)."""
    lines = [os.path.relpath(Path(f).absolute(), path.parent.absolute()) for f in files]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8", errors="surrogateescape")


def write_report(path: Path, dropped: Sequence[Result]) -> None:
    """A TSV of every dropped file: file, reason, detail."""
    rows = ["file\treason\tdetail"] + [f"{r.path}\t{r.reason}\t{r.detail}" for r in dropped]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8", errors="surrogateescape")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", metavar="SRC", help="image folders (recursive) or manifest files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the manifests, report and copies")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share held out for validation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    parser.add_argument("--min-size", type=int, default=64, help="drop images whose shorter side is smaller")
    parser.add_argument("--min-chroma", type=float, default=4.0, help="drop images with a lower chroma score")
    parser.add_argument("--resize", type=int, default=0, metavar="N", help="write JPEG copies, shorter side N")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes that decode")
    args = parser.parse_args(argv)
    if not 0 < args.val_fraction < 1:
        parser.error(f"--val-fraction {args.val_fraction} must be between 0 and 1")
    if args.resize < 0:
        parser.error(f"--resize {args.resize} must be 0 (no copies) or a positive side length")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    checks = Checks(min_size=args.min_size, min_chroma=args.min_chroma, resize=args.resize)
    args.out.mkdir(parents=True, exist_ok=True)
    kept, dropped = prepare(args.sources, args.out, checks, args.workers)
    write_report(args.out / "report.tsv", dropped)
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(Counter(r.reason for r in dropped).items()))
    print(f"scanned {len(kept) + len(dropped)} images in {', '.join(args.sources)}")
    print(f"dropped {len(dropped)} ({reasons or 'none'}): see {args.out / 'report.tsv'}")
    train, val = split_files(kept, args.val_fraction, args.seed)
    write_manifest(args.out / "train.txt", train)
    write_manifest(args.out / "val.txt", val)
    print(f"kept {len(kept)}: train {len(train)} in {args.out / 'train.txt'}, val {len(val)} in {args.out / 'val.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
