"""``infer.py``: colorize photos and videos (files, folders, globs) with a trained checkpoint.

Videos are planned and coloured by :mod:`pix2color.commands.infer_video`.

Outputs mirror each input folder's tree under ``--out``. An input is never overwritten, existing
outputs are skipped unless ``--overwrite``, and an unreadable photo is reported and skipped: the run
goes on and exits with code 1 at the end. torch and the models load only once there is work to do,
so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import glob
import sys
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pix2color.commands.common import add_hint_spread_arg, claim_output, run_cli
from pix2color.commands.hint_file import read_hint_file
from pix2color.commands.infer_video import EXIT_INTERRUPTED, add_video_args, colorize_videos, split_inputs
from pix2color.config import Backend, Device, Precision
from pix2color.errors import DataError, UserError
from pix2color.files import atomic_write
from pix2color.image_files import FORMATS, save_image

if TYPE_CHECKING:
    from PIL.Image import Image

    from pix2color.hint_points import Hint
    from pix2color.inference import Colorizer

BATCH_PIXELS = 24_000_000  # a batch is cut once its photos hold this many pixels, to bound memory


@dataclass(frozen=True)
class Job:
    """One photo to colorize and where its output goes."""

    source: Path
    target: Path

    @property
    def compare(self) -> Path:
        """Where ``--compare`` writes input | output: ``<stem>_compare.<ext>`` beside the output."""
        return self.target.with_name(f"{self.target.stem}_compare{self.target.suffix}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Colorize photos with a trained pix2color checkpoint. The model runs at --render-size; "
        "its colors are scaled to each photo's full size and joined with the photo's own lightness, "
        "so outputs keep the input's size and detail.",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or globs ('a/**/*.tif')"
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT",
        help="a .pt file from RUN_DIR/checkpoints (stage 1 or 2), or a release folder from pix2color-export --release",
    )
    parser.add_argument(
        "--out",
        default="colorized",
        metavar="DIR",
        help="output folder; it mirrors each input folder's tree (default: colorized)",
    )
    parser.add_argument(
        "--render-size",
        type=int,
        metavar="N",
        help="square size the model runs at, a multiple of 32 (default: training size)",
    )
    parser.add_argument(
        "--saturation", type=float, default=1.0, metavar="S", help="scale the predicted colors (default: 1)"
    )
    parser.add_argument("--device", choices=typing.get_args(Device), default="auto")
    parser.add_argument(
        "--backend",
        choices=typing.get_args(Backend),
        default="torch",
        help="run the model with PyTorch, or with ONNX Runtime on the CPU (faster there; needs the export extra)",
    )
    parser.add_argument(
        "--precision",
        choices=typing.get_args(Precision),
        default="auto",
        help="auto: fp16 on CUDA, bf16 on CPUs that run it natively, else fp32; fp32: always (as onnxruntime runs)",
    )
    parser.add_argument("--batch-size", type=int, default=8, metavar="B", help="photos per forward pass (default: 8)")
    parser.add_argument("--format", choices=tuple(FORMATS), default="png", help="output format (default: png)")
    parser.add_argument("--compare", action="store_true", help="also write input | output as <stem>_compare.<ext>")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument(
        "--hints",
        type=Path,
        metavar="FILE",
        help="colour hints (JSON): a list of {x, y, color, size} for one photo, or file name -> list",
    )
    add_hint_spread_arg(parser)
    add_video_args(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``infer.py`` and ``pix2color-infer``; returns the exit code."""
    args = build_parser().parse_args(argv)
    return run_cli(lambda: colorize_files(args))


def colorize_files(args: argparse.Namespace) -> int:
    """Plan, colorize, print the summary; 1 when any photo failed, else 0."""
    out = Path(args.out)
    photo_inputs, videos = split_inputs(args.inputs, out)
    jobs = plan_jobs(photo_inputs, out, args.format, args.compare) if photo_inputs or not videos else []
    todo = [job for job in jobs if args.overwrite or not job.target.exists()]
    todo_videos = [job for job in videos if args.overwrite or not job.target.exists()]
    tally: Counter[str] = Counter()
    hints = read_hint_file(args.hints, [job.source for job in jobs]) if args.hints else {}
    if todo or todo_videos:
        from pix2color.inference import Colorizer

        colorizer = Colorizer.from_checkpoint(
            args.checkpoint,
            args.device,
            args.render_size,
            args.saturation,
            args.batch_size,
            args.backend,
            args.precision,
            with_hint_spread=args.hint_spread,
        )
        if any(hints.values()) and not colorizer.accepts_hints:
            raise UserError(
                f"--hints {args.hints}: {args.checkpoint} takes no colour hints itself (trained without "
                "model.hints) and --no-hint-spread is set; drop one of them, or give a checkpoint trained with "
                "model.hints: true."
            )
        tally = _colorize_jobs(colorizer, todo, args, hints) if todo else tally
        tally += colorize_videos(colorizer, todo_videos, args)
    if tally["interrupted"]:
        return EXIT_INTERRUPTED
    skipped = len(jobs) + len(videos) - len(todo) - len(todo_videos)
    why = f" (already in {out}; --overwrite redoes them)" if skipped else ""
    print(f"{tally['done']} colorized, {skipped} skipped{why}, {tally['failed']} failed")
    return 1 if tally["failed"] else 0


def plan_jobs(inputs: Sequence[str], out: Path, fmt: str, compare: bool = False) -> list[Job]:
    """Expand files, folders and globs into jobs whose targets mirror each input folder under ``out``.

    An output is named like its input with the format's extension (``photo.tif`` -> ``photo.png``); where
    two inputs would share that name (``photo.tif``, ``photo.webp``), each keeps its own extension in
    front (``photo.tif.png``, ``photo.webp.png``). When ``out`` lies inside an input folder, the photos
    under it are outputs of an earlier run, not inputs; a photo named twice is colorized once.

    Raises:
        UserError: an input that does not exist, no photos at all, an output that would overwrite an
            input, or two inputs that would still be written to the same output (same-named photos of
            two input folders).
    """
    out_dir = out.resolve()
    jobs: dict[Path, Job] = {}
    for text in inputs:
        root, sources = _expand(text)
        out_inside = root.resolve() in out_dir.parents  # then photos under out_dir are earlier outputs
        for source in sources:
            key = source.resolve()
            if key not in jobs and not (out_inside and out_dir in key.parents):
                jobs[key] = Job(source, out / source.relative_to(root).with_suffix(f".{fmt}"))
    if not jobs:
        raise UserError(f"no images found in {', '.join(inputs)}; pass image files, folders or globs.")
    _keep_extensions_where_shared(jobs, fmt)
    _check_targets(jobs, compare)
    return list(jobs.values())


def _expand(text: str) -> tuple[Path, list[Path]]:
    """One INPUT -> (the folder its outputs are relative to, its image files)."""
    from pix2color.data import IMAGE_EXTENSIONS, list_images

    path = Path(text)
    if path.is_dir():
        return path, list_images([path])
    if path.is_file():
        return path.parent, [path]
    if _is_pattern(text):
        matches = sorted(Path(match) for match in glob.glob(text, recursive=True))
        files = [match for match in matches if match.is_file() and match.suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise UserError(f"{text} matches no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
        return Path(*_static_parts(path)), files
    raise UserError(f"input {text} does not exist; pass image files, folders or globs.")


def _is_pattern(text: str) -> bool:
    return any(char in text for char in "*?[")


def _static_parts(pattern: Path) -> Iterator[str]:
    """The leading parts of a glob pattern that hold no wildcard: its root folder."""
    for part in pattern.parts:
        if _is_pattern(part):
            return
        yield part


def _keep_extensions_where_shared(jobs: dict[Path, Job], fmt: str) -> None:
    """Rename the targets that two or more jobs share to ``<input name>.<fmt>``, in place."""
    sharing = Counter(job.target.resolve() for job in jobs.values())
    for key, job in jobs.items():
        if sharing[job.target.resolve()] > 1:
            jobs[key] = Job(job.source, job.target.with_name(f"{job.source.name}.{fmt}"))


def _check_targets(jobs: dict[Path, Job], compare: bool) -> None:
    """Refuse outputs that are inputs, and two inputs sharing one output."""
    sources = {key: job.source for key, job in jobs.items()}
    writers: dict[Path, object] = {}
    for job in jobs.values():
        for target in (job.target, job.compare) if compare else (job.target,):
            claim_output(target, job.source, sources, writers)


def _colorize_jobs(
    colorizer: Colorizer, jobs: list[Job], args: argparse.Namespace, hints: dict[Path, list[Hint]]
) -> Counter[str]:
    """Colorize and write ``jobs`` (with each photo's ``hints``) in batches under a progress bar; counts "done"
    and "failed"."""
    from tqdm import tqdm

    tally: Counter[str] = Counter()
    with tqdm(total=len(jobs), unit="photo", file=sys.stderr, dynamic_ncols=True) as bar:

        def fail(message: str) -> None:
            bar.write(f"failed: {message}", file=sys.stderr)
            tally["failed"] += 1
            bar.update()

        for batch in _batches(_open_all(jobs, fail), args.batch_size):
            given = [hints.get(job.source, []) for job, _ in batch]
            outputs = colorizer.colorize_batch([image for _, image in batch], hints=given)
            for (job, image), output in zip(batch, outputs, strict=True):
                try:
                    _write_outputs(job, image, output, args.format, args.compare)
                except OSError as exc:
                    fail(f"could not write {job.target} ({exc.strerror or exc})")
                    continue
                tally["done"] += 1
                bar.update()
    return tally


def _open_all(jobs: Iterable[Job], fail: Callable[[str], None]) -> Iterator[tuple[Job, Image]]:
    """Yield (job, decoded photo); an unreadable photo goes to ``fail`` and is skipped."""
    from pix2color.data import open_image

    for job in jobs:
        try:
            yield job, open_image(job.source)
        except DataError as exc:
            fail(str(exc))


def _batches(items: Iterable[tuple[Job, Image]], size: int) -> Iterator[list[tuple[Job, Image]]]:
    """Groups of at most ``size`` photos, cut early once they hold BATCH_PIXELS pixels."""
    batch, pixels = [], 0
    for job, image in items:
        batch.append((job, image))
        pixels += image.width * image.height
        if len(batch) >= size or pixels >= BATCH_PIXELS:
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch


def _write_outputs(job: Job, image: Image, output: Image, fmt: str, compare: bool) -> None:
    """Write the colorized photo, and input | output when ``compare``."""
    _save_atomic(output, job.target, fmt)
    if compare:
        _save_atomic(side_by_side(image, output), job.compare, fmt)


def side_by_side(original: Image, colorized: Image) -> Image:
    """original | colorized as one RGB image (alpha dropped), with the colorized photo's ICC profile."""
    from PIL import Image as PILImage

    from pix2color.data import to_rgb

    canvas = PILImage.new("RGB", (2 * colorized.width, colorized.height))
    canvas.paste(to_rgb(original), (0, 0))
    canvas.paste(colorized.convert("RGB"), (colorized.width, 0))
    canvas.info["icc_profile"] = colorized.info.get("icc_profile")
    return canvas


def _save_atomic(image: Image, path: Path, fmt: str) -> None:
    """Save through a temp file beside ``path``, then rename: no half-written outputs. JPEG drops alpha."""
    with atomic_write(path) as handle:
        save_image(image, handle, fmt)
