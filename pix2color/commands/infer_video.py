"""The video part of ``infer.py``: which inputs are videos, where their outputs go, and coloring them.

Video files (by extension, also inside folders and globs) and image sequences (``frames/%06d.png``)
become MP4 files under ``--out``, mirroring each input folder's tree like the photos; an image
sequence is named after its folder (``frames.mp4``). torch and PyAV load only once there is work.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pix2color.commands.common import claim_output
from pix2color.errors import DataError
from pix2color.video_options import (
    CHUNK_FRAMES,
    TEMPORAL_MODES,
    VIDEO_CODECS,
    VideoOptions,
    is_frame_sequence,
    is_video_file,
    list_videos,
)

if TYPE_CHECKING:
    from pix2color.inference import Colorizer

EXIT_INTERRUPTED = 130
DEFAULTS = VideoOptions()


@dataclass(frozen=True)
class VideoJob:
    """One video (a file, or an image-sequence pattern) and the MP4 it is written to."""

    source: str
    target: Path


def add_video_args(parser: argparse.ArgumentParser) -> None:
    """The video flags of infer.py."""
    group = parser.add_argument_group("videos (files, or image sequences such as frames/%06d.png)")
    group.add_argument(
        "--temporal",
        choices=TEMPORAL_MODES,
        default=DEFAULTS.temporal,
        help="smooth the colors over time: ema, or flow (warped along the motion); off (default: flow)",
    )
    group.add_argument(
        "--temporal-strength",
        type=float,
        default=DEFAULTS.strength,
        metavar="S",
        help=f"weight of the previous frame's colors, 0 to below 1 (default: {DEFAULTS.strength})",
    )
    group.add_argument(
        "--scene-cut",
        type=float,
        default=DEFAULTS.scene_cut,
        metavar="T",
        help="reset the smoothing where the lightness histogram jumps by more than T, 0 to 1 (1: never; "
        f"default: {DEFAULTS.scene_cut})",
    )
    group.add_argument("--video-codec", choices=VIDEO_CODECS, default=DEFAULTS.codec, help="(default: libx264)")
    group.add_argument(
        "--crf", type=int, default=DEFAULTS.crf, help=f"quality, 0 lossless to 51 (default: {DEFAULTS.crf})"
    )
    group.add_argument(
        "--chunk-frames",
        type=int,
        default=CHUNK_FRAMES,
        metavar="N",
        help=f"frames per resumable chunk (default: {CHUNK_FRAMES})",
    )


def video_options(args: argparse.Namespace) -> VideoOptions:
    """The VideoOptions the flags ask for, checked (ConfigError names a bad value)."""
    options = VideoOptions(
        args.video_codec, args.crf, args.temporal, args.temporal_strength, args.scene_cut, args.chunk_frames
    )
    options.check()
    return options


def split_inputs(inputs: Sequence[str], out: Path) -> tuple[list[str], list[VideoJob]]:
    """INPUTs -> (the ones that hold photos, for ``plan_jobs``; the video jobs).

    Videos under ``out`` are earlier outputs when ``out`` lies inside an input folder, not inputs.

    Raises:
        UserError: a video output that would overwrite an input, or two videos written to one output.
    """
    out_dir = out.resolve()
    photo_inputs, jobs = [], []
    for text in inputs:
        path = Path(text)
        if is_frame_sequence(text):
            jobs.append(VideoJob(text, out / f"{path.parent.resolve().name}.mp4"))
        elif path.is_file() and is_video_file(path):
            jobs.append(VideoJob(text, out / path.with_suffix(".mp4").name))
        elif path.is_dir():
            videos = [video for video in list_videos(path) if out_dir not in video.resolve().parents]
            jobs += [VideoJob(str(video), out / video.relative_to(path).with_suffix(".mp4")) for video in videos]
            if not videos or _holds_photos(path):
                photo_inputs.append(text)
        elif glob.has_magic(text):
            matches = [Path(match) for match in sorted(glob.glob(text, recursive=True))]
            root = Path(*(part for part in _until_magic(path.parts)))
            videos = [match for match in matches if match.is_file() and is_video_file(match)]
            jobs += [VideoJob(str(video), out / video.relative_to(root).with_suffix(".mp4")) for video in videos]
            if not videos or len(videos) < sum(match.is_file() for match in matches):
                photo_inputs.append(text)
        else:
            photo_inputs.append(text)
    _check_video_targets(jobs)
    return photo_inputs, jobs


def _holds_photos(folder: Path) -> bool:
    from pix2color.data import list_images

    try:
        return bool(list_images([folder]))
    except DataError:
        return False


def _until_magic(parts: Sequence[str]):
    for part in parts:
        if glob.has_magic(part):
            return
        yield part


def _check_video_targets(jobs: Sequence[VideoJob]) -> None:
    sources = {Path(job.source).resolve(): job.source for job in jobs}
    writers: dict[Path, object] = {}
    for job in jobs:
        claim_output(job.target, job.source, sources, writers)


def colorize_videos(colorizer: Colorizer, jobs: Sequence[VideoJob], args: argparse.Namespace) -> Counter[str]:
    """Colorize ``jobs`` one after the other, each under a frames progress bar; counts done, failed, interrupted.

    Ctrl-C stops at once, keeping the finished chunks (one line says how to resume).
    """
    options = video_options(args)
    identity = _identity(colorizer, args)
    tally: Counter[str] = Counter()
    for job in jobs:
        fresh = args.overwrite and job.target.exists()  # an interrupted run resumes even with --overwrite
        try:
            _colorize_one(colorizer, job, options, identity, fresh)
            tally["done"] += 1
        except KeyboardInterrupt:
            print(f"\ninterrupted: {job.source}'s finished chunks are kept; run the same command to resume.")
            tally["interrupted"] += 1
            return tally
        except DataError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            tally["failed"] += 1
        except OSError as exc:
            print(f"failed: could not write {job.target} ({exc.strerror or exc})", file=sys.stderr)
            tally["failed"] += 1
    return tally


def _colorize_one(colorizer: Colorizer, job: VideoJob, options: VideoOptions, identity: dict, fresh: bool) -> None:
    """One video under a progress bar of frames with frames/s and ETA."""
    from tqdm import tqdm

    from pix2color.video import colorize_video

    with contextlib.ExitStack() as stack:

        def progress(info, done: int):
            name = Path(job.source).name
            return stack.enter_context(tqdm(total=info.frames or None, initial=done, unit="frame", desc=name))

        colorize_video(colorizer, job.source, job.target, options, identity, fresh, progress)


def _identity(colorizer: Colorizer, args: argparse.Namespace) -> dict:
    """What a video's colors depend on besides its VideoOptions: a change restarts an interrupted video."""
    stat = Path(args.checkpoint).stat()
    return {
        "checkpoint": str(Path(args.checkpoint).resolve()),
        "checkpoint_mtime_ns": stat.st_mtime_ns,
        "render_size": colorizer.render_size,
        "saturation": colorizer.saturation,
        "batch_size": colorizer.batch_size,
        "device": str(colorizer.device),
        "backend": args.backend,
    }
