"""What a video job is, without torch or PyAV (so that planning and ``--help`` stay fast).

Which inputs are videos (files by extension, image sequences such as ``frames/%06d.png``) and the
settings a video is encoded and smoothed with (:class:`VideoOptions`), with their checks.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pix2color.errors import ConfigError

TemporalMode = Literal["off", "ema", "flow"]
TEMPORAL_MODES = typing.get_args(TemporalMode)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp"}
)
VIDEO_CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1")  # all take --crf; all fit in MP4
FRAME_PATTERN = re.compile(r"%0?\d*d")  # an image sequence, as FFmpeg's image2 names it: frames/%06d.png
FRAME_SEQUENCE_RATE = 24  # frames/s given to a frame-folder input
CHUNK_FRAMES = 240


@dataclass(frozen=True)
class VideoOptions:
    """How a video is encoded and smoothed; a change of any of these restarts a resumed video."""

    codec: str = "libx264"
    crf: int = 18
    temporal: TemporalMode = "flow"
    strength: float = 0.6
    scene_cut: float = 0.25
    chunk_frames: int = CHUNK_FRAMES

    def check(self) -> None:
        """Raise ConfigError naming a bad codec, crf, temporal setting or chunk length."""
        if self.codec not in VIDEO_CODECS:
            raise ConfigError(f"video codec {self.codec!r} is not valid; valid codecs: {', '.join(VIDEO_CODECS)}.")
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"crf {self.crf} must be in 0..51 (0 lossless, 18 visually lossless, 23 smaller).")
        if self.chunk_frames < 1:
            raise ConfigError(f"chunk frames {self.chunk_frames} must be 1 or more.")
        check_temporal(self.temporal, self.strength, self.scene_cut)


def check_temporal(mode: str, strength: float, scene_cut: float) -> None:
    """Raise ConfigError naming a bad mode, strength (0..1) or scene-cut threshold (0..1]."""
    if mode not in TEMPORAL_MODES:
        raise ConfigError(f"temporal mode {mode!r} is not valid; valid modes: {', '.join(TEMPORAL_MODES)}.")
    if not 0 <= strength < 1:
        raise ConfigError(f"temporal strength {strength} must be in [0, 1) (0 smooths nothing).")
    if not 0 < scene_cut <= 1:
        raise ConfigError(f"scene-cut threshold {scene_cut} must be in (0, 1] (1 never cuts).")


def is_frame_sequence(text: str) -> bool:
    """Whether an input names an image sequence (``frames/%06d.png``)."""
    return bool(FRAME_PATTERN.search(Path(text).name))


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def list_videos(folder: Path) -> list[Path]:
    """Video files under ``folder``, recursively and sorted; hidden entries (a parts folder) skipped."""
    found = []
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not hidden and path.is_file() and is_video_file(path):
            found.append(path)
    return found
