"""Colorize videos: frames stream from PyAV through the Colorizer in batches, into chunks, then one file.

Memory is bounded by the batch, never by the film's length: frames are decoded one at a time, colored
``batch_size`` at a time, encoded at once and dropped. The output keeps the input's frame rate, frame
count, size, rotation and color tags (matrix, range, primaries, transfer; frames are converted to YUV with
the input's matrix); the audio streams are remuxed untouched (their packets copied, not re-encoded).

Resuming: the frames are encoded in chunks of ``chunk_frames`` into a hidden folder beside the target,
``.<name>.parts/``, each written to a temp file and renamed, together with the smoother's state after its
last frame. Ctrl-C keeps the finished chunks; the same command again skips them (decoding, not coloring,
their frames) and continues with the same smoothing state, so the file it joins is the file an
uninterrupted run writes. The join copies the chunks' packets, shifted in time, and the audio packets,
interleaved by time, into the target; then the parts folder is removed.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from pix2color.errors import DataError
from pix2color.files import atomic_write
from pix2color.inference import Colorizer
from pix2color.temporal import TemporalSmoother
from pix2color.video_options import FRAME_SEQUENCE_RATE, VideoOptions, is_frame_sequence

Routed = tuple  # (packet, the output stream it goes to; None: the video stream)
# Encoder options beyond --crf. x264's macroblock tree gave different bitstreams (up to 39 levels apart once
# decoded) for the same frames in different processes; without it the same frames always give the same
# file, so a resumed run writes what an uninterrupted one does. It cost 3% more bytes at crf 18 on the
# test clip's pan at 480x320.
ENCODER_OPTIONS = {"libx264": {"x264-params": "no-mbtree=1"}}
# FFmpeg's color matrix tags (AVColorSpace) -> the matrix swscale converts RGB to YUV with. An untagged
# input was decoded with BT.601 (FFmpeg's default), so its output is encoded, and tagged, as BT.601.
UNSPECIFIED = 2  # AVCOL_SPC_UNSPECIFIED, AVCOL_PRI_UNSPECIFIED, AVCOL_TRC_UNSPECIFIED
BT601 = 6  # AVCOL_SPC_SMPTE170M
MATRICES = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG; 2 is full (JPEG) range, 0 unspecified


@dataclass(frozen=True)
class VideoColor:
    """The color tags of a video stream, as FFmpeg numbers them (AVColorSpace, AVColorRange, ...)."""

    matrix: int = UNSPECIFIED
    range: int = 0
    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED

    def encoded(self) -> VideoColor:
        """The tags of the output: the input's matrix (BT.601 when untagged, or one swscale lacks) and range
        (limited when untagged), primaries and transfer as they are."""
        matrix = self.matrix if self.matrix in MATRICES else BT601
        return VideoColor(matrix, self.range or LIMITED_RANGE, self.primaries, self.transfer)


@dataclass(frozen=True)
class VideoInfo:
    """What the output keeps of the input: rate (frames/s), frames (0: unknown), size, rotation (degrees), color."""

    rate: Fraction
    frames: int
    width: int
    height: int
    rotation: int
    color: VideoColor = VideoColor()


@contextlib.contextmanager
def open_video(source: str | Path) -> Iterator[av.container.InputContainer]:
    """Open a video file or image sequence for decoding; unreadable input raises DataError naming it."""
    options = {"framerate": str(FRAME_SEQUENCE_RATE)} if is_frame_sequence(str(source)) else {}
    try:
        container = av.open(str(source), format="image2" if options else None, options=options)
    except (av.FFmpegError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise DataError(f"{source} is not a readable video ({reason}); check or re-download the file.") from exc
    try:
        if not container.streams.video:
            raise DataError(f"{source} has no video stream.")
        yield container
    finally:
        container.close()


def decode_frames(source: str | Path, skip: int = 0) -> Iterator[np.ndarray]:
    """The frames of ``source`` as (H, W, 3) uint8 RGB, in order, after the first ``skip`` (decoded, not converted).

    Raises:
        DataError: the file cannot be opened or decoding fails part way (truncated or damaged).
    """
    with open_video(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                if index >= skip:
                    yield frame.to_ndarray(format="rgb24")
                index += 1
        except av.FFmpegError as exc:
            reason = exc.strerror or exc
            raise DataError(f"{source} is damaged after frame {index} ({reason}); check or re-download it.") from exc


def probe(source: str | Path) -> VideoInfo:
    """Rate, frame count (0 when the container does not say), size and rotation of the first video stream."""
    with open_video(source) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(FRAME_SEQUENCE_RATE)
        frames = stream.frames or (round(float(container.duration / av.time_base * rate)) if container.duration else 0)
        try:
            first = next(container.decode(stream))
        except (StopIteration, av.FFmpegError) as exc:
            raise DataError(f"{source} holds no readable frame; check or re-download the file.") from exc
        color = VideoColor(first.colorspace, first.color_range, first.color_primaries, first.color_trc)
        return VideoInfo(Fraction(rate), frames, first.width, first.height, int(first.rotation or 0), color)


class ChunkStore:
    """The parts folder of one target: ``settings.json``, ``chunk_NNNNN.mp4`` + ``state_NNNNN.pt``, ``done.json``.

    A chunk file exists only once it is complete (renamed from a temp file after its state was saved).
    """

    def __init__(self, target: Path, settings: dict):
        self.folder = target.parent / f".{target.name}.parts"
        self.settings = settings

    def open(self, fresh: bool = False) -> int:
        """Create the folder, or keep one of an earlier run with the same settings; returns its completed chunks."""
        settings = json.dumps(self.settings, indent=2, sort_keys=True) + "\n"
        saved = self.folder / "settings.json"
        if fresh or not saved.exists() or saved.read_text() != settings:
            shutil.rmtree(self.folder, ignore_errors=True)
        if not saved.exists():
            with atomic_write(saved) as handle:
                handle.write(settings.encode())
        return next(k for k in itertools.count() if not self.chunk(k).exists())

    def chunk(self, index: int) -> Path:
        return self.folder / f"chunk_{index:05d}.mp4"

    def save_state(self, index: int, state: dict) -> None:
        with atomic_write(self.folder / f"state_{index:05d}.pt") as handle:
            torch.save(state, handle)

    def load_state(self, index: int) -> dict:
        return torch.load(self.folder / f"state_{index:05d}.pt", weights_only=True)

    def finish(self, frames: int, chunks: int) -> None:
        with atomic_write(self.folder / "done.json") as handle:
            handle.write(json.dumps({"frames": frames, "chunks": chunks}).encode())

    def done(self) -> dict | None:
        """{"frames", "chunks"} once every chunk is written, else None."""
        path = self.folder / "done.json"
        return json.loads(path.read_text()) if path.exists() else None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def colorize_video(
    colorizer: Colorizer,
    source: str | Path,
    target: Path,
    options: VideoOptions | None = None,
    identity: dict | None = None,
    fresh: bool = False,
    progress: Callable[[VideoInfo, int], object] | None = None,
) -> int:
    """Colorize one video (file or image sequence) into ``target`` (MP4), resuming an interrupted run.

    Args:
        colorizer: colors the frames; its batch size is the frames per forward pass.
        source: a video file, or an image sequence such as ``frames/%06d.png``.
        target: the output file; its parts folder lies beside it.
        options: codec, crf, temporal smoothing and chunk length (default: :class:`VideoOptions`).
        identity: what else the output depends on (checkpoint, render size...): a change restarts it.
        fresh: drop the chunks of an earlier run even when the settings match.
        progress: called with (info, frames already done) once; returns a bar with ``update(n)``, or None.

    Returns:
        The number of frames written.

    Raises:
        DataError: the input cannot be read.
    """
    options = options or VideoOptions()
    options.check()
    info = probe(source)
    store = ChunkStore(target, _settings(source, info, options, identity))
    first_chunk = store.open(fresh)
    done = store.done()
    bar = progress(info, done["frames"] if done else first_chunk * options.chunk_frames) if progress else None
    if done is None:
        smoother = TemporalSmoother(options.temporal, options.strength, options.scene_cut)
        if first_chunk:
            smoother.load_state_dict(store.load_state(first_chunk - 1), colorizer.device)
        frames = decode_frames(source, skip=first_chunk * options.chunk_frames)
        written = _colorize_chunks(colorizer, frames, store, first_chunk, smoother, info, options, bar)
        done = {"frames": first_chunk * options.chunk_frames + written[0], "chunks": written[1]}
        store.finish(done["frames"], done["chunks"])
    if done["frames"] == 0:
        raise DataError(f"{source} holds no readable frame; check or re-download the file.")
    _join(store, done["chunks"], source, target, info, options.chunk_frames)
    store.remove()
    return done["frames"]


def _settings(source: str | Path, info: VideoInfo, options: VideoOptions, identity: dict | None) -> dict:
    """Everything the output depends on, for :class:`ChunkStore` to tell an earlier run's chunks apart."""
    path = Path(source)
    stat = (path if path.exists() else path.parent).stat()
    described = {"source": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    # "colour": the key that settings.json has always had, so that earlier runs' parts still resume
    encoder = {"encoder_options": ENCODER_OPTIONS.get(options.codec, {}), "colour": asdict(info.color.encoded())}
    return described | {"rate": str(info.rate)} | asdict(options) | encoder | (identity or {})


def _colorize_chunks(
    colorizer: Colorizer,
    frames: Iterator[np.ndarray],
    store: ChunkStore,
    first_chunk: int,
    smoother: TemporalSmoother,
    info: VideoInfo,
    options: VideoOptions,
    bar,
) -> tuple[int, int]:
    """Color and encode chunk after chunk until the frames run out; returns (frames written, chunks in all)."""
    written, index = 0, first_chunk
    while (first := next(frames, None)) is not None:
        chunk = itertools.chain([first], itertools.islice(frames, options.chunk_frames - 1))
        with _chunk_writer(store.chunk(index), info, options) as write:
            for batch in _batches(chunk, colorizer.batch_size):
                write(_colorize_batch(colorizer, smoother, batch))
                written += len(batch)
                if bar is not None:
                    bar.update(len(batch))
            store.save_state(index, smoother.state_dict())  # before the chunk's rename marks it complete
        index += 1
    return written, index


def _batches(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    while batch := list(itertools.islice(frames, size)):
        yield batch


def _colorize_batch(colorizer: Colorizer, smoother: TemporalSmoother, frames: list[np.ndarray]) -> np.ndarray:
    """(B, H, W, 3) uint8 frames -> colored (B, H, W, 3) uint8, their chroma smoothed over time."""
    rgb = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    lightness = colorizer.render_lightness(rgb)
    chroma = smoother(lightness, colorizer.predict_chroma(lightness))
    return colorizer.join(rgb, chroma).permute(0, 2, 3, 1).cpu().numpy()


@contextlib.contextmanager
def _chunk_writer(path: Path, info: VideoInfo, options: VideoOptions) -> Iterator[Callable[[np.ndarray], None]]:
    """Encode frames into a video-only MP4 at ``path`` (complete once the block exits); yields write(frames)."""
    with atomic_write(path) as handle:
        container = av.open(handle, "w", format="mp4")
        try:
            stream = container.add_stream(options.codec, rate=info.rate)
            stream.width, stream.height = info.width, info.height
            even = info.width % 2 == 0 and info.height % 2 == 0
            stream.pix_fmt = "yuv420p" if even else "yuv444p"  # 4:2:0 needs even sides
            stream.options = {"crf": str(options.crf)} | ENCODER_OPTIONS.get(options.codec, {})
            color = info.color.encoded()
            context = stream.codec_context
            context.colorspace, context.color_range = color.matrix, color.range
            context.color_primaries, context.color_trc = color.primaries, color.transfer
            to_yuv = {"dst_colorspace": MATRICES[color.matrix], "dst_color_range": color.range}
            count = itertools.count()

            def write(frames: np.ndarray) -> None:
                for rgb in frames:
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=stream.pix_fmt, **to_yuv)
                    frame.pts = next(count)
                    container.mux(stream.encode(frame))

            yield write
            container.mux(stream.encode(None))
        finally:
            container.close()


def _join(store: ChunkStore, chunks: int, source: str | Path, target: Path, info: VideoInfo, chunk_frames: int) -> None:
    """Copy the chunks' video packets and the source's audio packets, interleaved by time, into ``target``."""
    with atomic_write(target) as handle, open_video(source) as audio_source:
        output = av.open(handle, "w", format="mp4")
        try:
            with av.open(str(store.chunk(0))) as first:
                video = output.add_stream_from_template(first.streams.video[0])
            if info.rotation:
                video.set_display_rotation(info.rotation)
            audio = _audio_streams(source, audio_source, output)
            packets = heapq.merge(
                _chunk_packets(store, chunks, info.rate, chunk_frames),
                _audio_packets(audio_source, audio),
                key=lambda item: item[0].dts * item[0].time_base,
            )
            for packet, stream in packets:
                packet.stream = stream if stream is not None else video
                output.mux(packet)
        finally:
            output.close()


def _audio_streams(source: str | Path, container: av.container.InputContainer, output) -> dict:
    """Input audio stream index -> its copy in ``output``; a codec MP4 cannot hold is left out with a warning."""
    streams = {}
    for stream in container.streams.audio:
        codec = stream.codec_context.name
        if codec in output.supported_codecs:
            streams[stream.index] = output.add_stream_from_template(stream)
        else:
            warnings.warn(
                f"{source}: audio stream {stream.index} ({codec}) cannot be copied into MP4 and is left out of the "
                "output; to keep it, convert it first, e.g. ffmpeg -i IN -c:v copy -c:a aac OUT.mkv",
                stacklevel=2,
            )
    return streams


def _chunk_packets(store: ChunkStore, chunks: int, rate: Fraction, chunk_frames: int) -> Iterator[Routed]:
    """The video packets of every chunk in order, their times shifted to the chunk's place in the film."""
    for index in range(chunks):
        with av.open(str(store.chunk(index))) as container:
            stream = container.streams.video[0]
            shift = round(index * chunk_frames / rate / stream.time_base)
            for packet in container.demux(stream):
                if packet.dts is None:  # the demuxer's empty flush packet
                    continue
                packet.pts += shift
                packet.dts += shift
                yield packet, None


def _audio_packets(container: av.container.InputContainer, streams: dict) -> Iterator[Routed]:
    """The packets of the source's audio streams that go into the output, in file order."""
    if not streams:
        return
    for packet in container.demux(*(s for s in container.streams.audio if s.index in streams)):
        if packet.dts is not None:
            yield packet, streams[packet.stream.index]
