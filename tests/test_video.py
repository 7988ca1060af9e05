"""Videos end to end on clips made from real photos: what the output keeps, flicker, cuts, resume, memory, bad files.

Each clip is a slow pan and zoom over one photo of ../shared/data, then a hard cut to a pan over another,
at 24 frames/s with a 440 Hz tone, encoded losslessly (so that two clips holding the same frames decode to
the same pixels). The color clip is also the truth.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from pix2color import video
from pix2color.commands import infer
from pix2color.flicker import clip_scores
from pix2color.inference import Colorizer
from pix2color.video import ChunkStore, colorize_video, decode_frames, probe
from pix2color.video_options import VideoOptions
from tests.conftest import SHARED_DATA, require_shared_data

PHOTOS = [SHARED_DATA / "val" / "BSDS500__101085.jpg", SHARED_DATA / "val" / "BSDS500__102061.jpg"]
REPO = Path(__file__).resolve().parents[1]
SIZE = (144, 96)
RATE = 24
SCENES = (36, 24)  # frames of the pan over each photo: 1.5 s, a hard cut, 1 s
CUT = SCENES[0]


def pan(photo: Path, size: tuple[int, int], frames: int) -> Iterator[np.ndarray]:
    """A slow pan to the right with a zoom in over ``photo``: (H, W, 3) uint8 frames, sub-pixel smooth."""
    width, height = size
    image = Image.open(photo).convert("RGB")
    image = image.resize((2 * width, round(2 * width * image.height / image.width)))
    for i in range(frames):
        t = i / max(frames - 1, 1)
        box_w = image.width * 0.6 * (1 - 0.15 * t)
        box_h = box_w * height / width
        left, top = image.width * (0.1 + 0.15 * t), (image.height - box_h) / 2
        box = (left, top, left + box_w, top + box_h)
        yield np.asarray(image.transform(size, Image.Transform.EXTENT, box, Image.Resampling.BICUBIC))


def write_clip(
    path: Path, frames: Iterator[np.ndarray], size=SIZE, rate=RATE, audio=True, rotation=0, bt709=False
) -> Path:
    """Encode frames losslessly (H.264 crf 0) into an MP4, with a 440 Hz AAC tone as long as the clip;
    ``bt709``: converted with the BT.709 matrix and tagged so (as HD films are), else untagged BT.601."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height = size
        video.pix_fmt, video.options = "yuv420p", {"crf": "0"}
        matrix = "ITU709" if bt709 else "ITU601"
        if bt709:
            context = video.codec_context
            context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
            context.color_range = 1  # limited
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=16000) if audio else None
        count = 0
        for count, rgb in enumerate(frames, 1):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=matrix, dst_color_range="MPEG")
            frame.pts = count - 1
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            t = np.arange(16000 * count // rate) / 16000
            tone = av.AudioFrame.from_ndarray(
                (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], "fltp", "mono"
            )
            tone.sample_rate, tone.pts = 16000, 0
            container.mux([*sound.encode(tone), *sound.encode(None)])
    return path


def scene_frames(scene: int | None = None, size=SIZE) -> Iterator[np.ndarray]:
    """The clip's frames: both scenes, or one (0 or 1)."""
    for index, (photo, frames) in enumerate(zip(PHOTOS, SCENES, strict=True)):
        if scene is None or scene == index:
            yield from pan(photo, size, frames)


@pytest.fixture(autouse=True, scope="module")
def _shared_photos() -> None:
    """Every test here reads two photos of ../shared/data/val: one clear line when the folder is missing."""
    require_shared_data(PHOTOS[0].parent)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """``film``: both scenes with audio, rotated 90°; ``second``: the second scene alone; both BT.709."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "film": write_clip(folder / "film.mp4", scene_frames(), rotation=90, bt709=True),
        "second": write_clip(folder / "second.mp4", scene_frames(1), audio=False, bt709=True),
    }


def frames_of(path: Path) -> np.ndarray:
    return np.stack(list(decode_frames(path)))


def streams_of(path: Path) -> dict:
    """What the output must keep: video rate, frames, size, rotation, color tags; audio packets' bytes and times."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        first = next(container.decode(video))
        kept = {"rate": video.average_rate, "size": (first.width, first.height), "rotation": first.rotation}
        kept["color"] = (first.colorspace, first.color_range, first.color_primaries, first.color_trc)
    with av.open(str(path)) as container:
        audio = [(bytes(p), p.pts, p.duration) for p in container.demux(*container.streams.audio) if p.size]
    return kept | {"frames": len(list(decode_frames(path))), "audio": audio}


def run_infer(capsys, *argv) -> tuple[int, str, list[str]]:
    """infer.main on the CPU -> (exit code, stdout, stderr lines without progress-bar redraws)."""
    code = infer.main([*map(str, argv), "--device", "cpu", "--render-size", "32"])
    captured = capsys.readouterr()
    lines = [line for line in re.split(r"[\r\n]+", captured.err) if line.strip() and "|" not in line]
    return code, captured.out, lines


def test_output_keeps_rate_frames_size_rotation_and_audio(clips, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, errors = run_infer(
        capsys, clips["film"], "--checkpoint", tiny_checkpoint, "--out", out, "--chunk-frames", "16"
    )
    assert code == 0 and errors == [] and "1 colorized" in stdout
    source, output = streams_of(clips["film"]), streams_of(out / "film.mp4")
    assert source["frames"] == sum(SCENES) and source["audio"]
    assert output == source  # audio packets byte for byte: remuxed, not re-encoded
    assert not (out / ".film.mp4.parts").exists()
    color = frames_of(out / "film.mp4").astype(float)
    assert np.abs(color - color.mean(axis=-1, keepdims=True)).mean() > 2  # colored, not gray


SATURATED = ("--temporal", "off", "--saturation", "3")  # vivid colors, where the matrices differ most


def test_colors_are_encoded_in_the_inputs_matrix(clips, tiny_checkpoint, tmp_path, capsys):
    """The BT.709 film comes back tagged BT.709 and holds the Colorizer's colors in that matrix: decoded as
    tagged, its frames' mean colors are far closer to them than decoded as BT.601 (what players do with
    an untagged file below 720 lines, and what the encoder's own conversion used to write)."""
    out = tmp_path / "out"
    code, _, _ = run_infer(
        capsys, *(clips["film"], "--checkpoint", tiny_checkpoint, "--out", out), *SATURATED, "--crf", "0"
    )
    assert code == 0
    colorizer = Colorizer.from_checkpoint(tiny_checkpoint, "cpu", render_size=32, saturation=3)
    source = torch.from_numpy(frames_of(clips["film"])).permute(0, 3, 1, 2)
    expected = colorizer.predict_rgb(source).permute(0, 2, 3, 1).numpy().astype(float)
    with av.open(str(out / "film.mp4")) as container:
        frames = list(container.decode(video=0))
    assert frames[0].colorspace == 1  # AVCOL_SPC_BT709
    as_tagged = np.stack([f.to_ndarray(format="rgb24") for f in frames]).astype(float)
    as_601 = np.stack([f.reformat(format="rgb24", src_colorspace="ITU601").to_ndarray() for f in frames])
    # each frame's mean color: 4:2:0 subsampling keeps it, a wrong matrix shifts it
    errors = [np.abs((x - expected).mean(axis=(1, 2))).mean() for x in (as_tagged, as_601.astype(float))]
    assert errors[0] < errors[1] / 2, errors  # seen: 1.5 against 3.9 levels (clipping of vivid colors adds some)


class Flickering(torch.nn.Module):
    """The tiny generator plus a color jitter that changes every frame, as a trained model's colors do.

    A random tiny model barely flickers on a clean pan (its colors are a fixed function of the frame), so
    the jitter gives the smoothing something measurable to remove: a smooth random chroma field per call.
    """

    def __init__(self, generator: torch.nn.Module, amount: float = 0.05):
        super().__init__()
        self.generator, self.amount = generator, amount
        self.rng = torch.Generator().manual_seed(0)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        chroma = self.generator(lightness)
        field = torch.randn(lightness.shape[0], 2, 4, 4, generator=self.rng) * self.amount
        return chroma + torch.nn.functional.interpolate(field, chroma.shape[-2:], mode="bilinear").to(chroma)


def test_smoothing_lowers_flicker_and_keeps_colorfulness(clips, tiny_checkpoint, tmp_path):
    scores = {}
    for mode in ("off", "ema", "flow"):
        colorizer = Colorizer.from_checkpoint(tiny_checkpoint, "cpu", render_size=32)
        colorizer.generator = Flickering(colorizer.generator)  # the same jitter sequence for every mode
        target = tmp_path / f"{mode}.mp4"
        colorize_video(colorizer, clips["film"], target, VideoOptions(temporal=mode, crf=0))
        scores[mode] = clip_scores(target, clips["film"])
    for mode in ("ema", "flow"):
        assert scores[mode]["cdc"] < scores["off"]["cdc"], scores
        assert scores[mode]["warp_error"] < scores["off"]["warp_error"], scores
        assert scores[mode]["colorfulness"] == pytest.approx(scores["off"]["colorfulness"], rel=0.1), scores


def test_smoothing_resets_at_the_cut(clips, tiny_checkpoint, tmp_path):
    """After the cut, the film's frames are those of the second scene colored alone: nothing from before it."""
    colorizer = Colorizer.from_checkpoint(tiny_checkpoint, "cpu", render_size=32, batch_size=1)
    outputs = {}
    for name, clip, mode in (("film", "film", "flow"), ("second", "second", "flow"), ("off", "film", "off")):
        target = tmp_path / f"{name}.mp4"
        colorize_video(colorizer, clips[clip], target, VideoOptions(temporal=mode, crf=0, chunk_frames=20))
        outputs[name] = frames_of(target)
    np.testing.assert_array_equal(outputs["film"][CUT:], outputs["second"])
    np.testing.assert_array_equal(outputs["film"][CUT], outputs["off"][CUT])  # the cut frame is not smoothed
    assert not np.array_equal(outputs["film"][CUT + 1 :], outputs["off"][CUT + 1 :])  # but the next ones are


# infer.py whose chunks each take 0.5 s longer to complete (before their rename), so that the test's SIGINT
# lands while chunks are still to come however fast the machine is (an idle one once finished them all first).
SLOW_CHUNKS_CHILD = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background CI job inherits SIGINT ignored
from pix2color import video
from pix2color.commands.infer import main
save_state = video.ChunkStore.save_state
def slow_save_state(store, index, state):
    save_state(store, index, state)
    time.sleep(0.5)
video.ChunkStore.save_state = slow_save_state
sys.argv[0] = "infer.py"
raise SystemExit(main(sys.argv[1:]))
"""


def test_interrupted_run_resumes_from_its_kept_chunks(clips, tiny_checkpoint, tmp_path):
    """Ctrl-C (SIGINT) a run after two chunks; the same command keeps those chunks and finishes the file,
    byte for byte the file of an uninterrupted run (in a third process, with flow smoothing carried over)."""
    command = [clips["film"], "--checkpoint", tiny_checkpoint, "--chunk-frames", "8", "--batch-size", "4"]
    command = [*map(str, command), "--device", "cpu", "--render-size", "32"]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    parts = tmp_path / "resumed" / ".film.mp4.parts"
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHUNKS_CHILD, *command, "--out", str(tmp_path / "resumed")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    while len(list(parts.glob("chunk_*.mp4"))) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    stdout, _ = child.communicate(timeout=60)
    kept = sorted(parts.glob("chunk_*.mp4"))
    assert child.returncode == infer.EXIT_INTERRUPTED, stdout
    assert "run the same command to resume" in stdout and 2 <= len(kept) < sum(SCENES) / 8
    assert not (tmp_path / "resumed" / "film.mp4").exists()
    kept_frames = np.concatenate([frames_of(chunk) for chunk in kept])

    for out in ("resumed", "whole"):
        child = [sys.executable, str(REPO / "infer.py"), *command, "--out", str(tmp_path / out)]
        subprocess.run(child, env=env, check=True, capture_output=True)
    resumed, whole = tmp_path / "resumed" / "film.mp4", tmp_path / "whole" / "film.mp4"
    np.testing.assert_array_equal(frames_of(resumed)[: len(kept_frames)], kept_frames)
    np.testing.assert_array_equal(frames_of(resumed), frames_of(whole))
    assert resumed.read_bytes() == whole.read_bytes()
    assert not parts.exists()


def test_chunks_written_with_other_encoder_settings_are_not_reused(clips, tmp_path, monkeypatch):
    info, options, target = probe(clips["second"]), VideoOptions(chunk_frames=8), tmp_path / "second.mp4"

    def store() -> ChunkStore:
        return ChunkStore(target, video._settings(clips["second"], info, options, None))

    store().open()
    store().chunk(0).write_bytes(b"a finished chunk")
    assert store().open() == 1  # same settings: the chunk is kept
    monkeypatch.setitem(video.ENCODER_OPTIONS, "libx264", {"x264-params": "no-mbtree=0"})
    assert store().open() == 0 and not store().chunk(0).exists()


PEAK_RSS_CHILD = """
import sys
from pathlib import Path
from pix2color.inference import Colorizer
from pix2color.video import colorize_video
colorizer = Colorizer.from_checkpoint(sys.argv[1], "cpu", render_size=32, batch_size=8)
colorize_video(colorizer, sys.argv[2], Path(sys.argv[3]))
peak = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
print(int(peak.split()[1]))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS read from /proc (Linux)")
def test_peak_memory_does_not_grow_with_the_clip_length(tiny_checkpoint, tmp_path):
    """A 10 s and a 60 s clip (6 frames/s, 96 x 64) colorized each in a fresh process: peak RSS within 10%.

    The peak is the child's VmHWM: ``getrusage`` would report at least the parent's peak (it survives exec).
    """
    peaks = {}
    for seconds in (10, 60):
        frames = [frame for _ in range(seconds // 5) for frame in pan(PHOTOS[0], (96, 64), 30)]
        clip = write_clip(tmp_path / f"clip{seconds}.mp4", iter(frames), size=(96, 64), rate=6)
        env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        child = [
            sys.executable,
            "-c",
            PEAK_RSS_CHILD,
            str(tiny_checkpoint),
            str(clip),
            str(tmp_path / f"out{seconds}.mp4"),
        ]
        done = subprocess.run(child, env=env, capture_output=True, text=True, check=True)
        peaks[seconds] = int(done.stdout.split()[-1])
        assert probe(tmp_path / f"out{seconds}.mp4").frames == 6 * seconds
    assert peaks[60] <= 1.1 * peaks[10], peaks


def test_a_folder_of_photos_videos_and_a_broken_video(clips, tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "reel"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "film.mp4").write_bytes(clips["second"].read_bytes())
    cut = clips["film"].read_bytes()
    (folder / "truncated.mp4").write_bytes(cut[: len(cut) // 2])
    Image.open(PHOTOS[0]).resize((64, 48)).save(folder / "photo.jpg")
    out = tmp_path / "out"
    code, stdout, errors = run_infer(capsys, folder, "--checkpoint", tiny_checkpoint, "--out", out)
    assert code == 1 and "2 colorized, 0 skipped, 1 failed" in stdout
    assert len(errors) == 1 and errors[0].startswith("failed: ") and "truncated.mp4" in errors[0], errors
    assert (out / "photo.png").is_file() and probe(out / "sub" / "film.mp4").frames == SCENES[1]
    code, stdout, _ = run_infer(capsys, folder, "--checkpoint", tiny_checkpoint, "--out", out)
    assert "0 colorized, 2 skipped" in stdout  # done outputs are skipped; the broken one fails again


def test_audio_mp4_cannot_hold_is_left_out_with_one_warning(tiny_checkpoint, tmp_path, capsys):
    source = tmp_path / "telephone.mov"
    with av.open(str(source), "w") as container:
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height = SIZE
        sound = container.add_stream("pcm_mulaw", rate=8000)  # G.711: QuickTime holds it, MP4 does not
        for i, rgb in enumerate(itertools.islice(scene_frames(0), 12)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        tone = av.AudioFrame.from_ndarray(np.zeros((1, 4000), np.int16), "s16", "mono")
        tone.sample_rate, tone.pts = 8000, 0
        container.mux([*sound.encode(tone), *sound.encode(None)])
    dropped = re.escape(f"{source}: audio stream 1 (pcm_mulaw) cannot be copied into MP4 and is left out")
    with pytest.warns(UserWarning, match=dropped):  # the CLI prints it as one "warning: ..." line
        code, stdout, _ = run_infer(capsys, source, "--checkpoint", tiny_checkpoint, "--out", tmp_path / "out")
    assert code == 0 and "1 colorized" in stdout
    with av.open(str(tmp_path / "out" / "telephone.mp4")) as output:
        assert not output.streams.audio and output.streams.video[0].frames == 12


def test_an_image_sequence_becomes_a_video(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(pan(PHOTOS[1], (64, 48), 12)):
        Image.fromarray(frame).save(folder / f"{i:06d}.png")
    out = tmp_path / "out"
    code, stdout, errors = run_infer(capsys, folder / "%06d.png", "--checkpoint", tiny_checkpoint, "--out", out)
    assert code == 0 and errors == []
    info = probe(out / "frames.mp4")
    assert (info.frames, info.rate, info.width, info.height) == (12, 24, 64, 48)


def test_bad_video_settings_are_one_line_errors(clips, tiny_checkpoint, tmp_path, capsys):
    for flags, words in ((["--temporal-strength", "1.5"], "temporal strength 1.5"), (["--crf", "60"], "crf 60")):
        code, _, errors = run_infer(capsys, clips["second"], "--checkpoint", tiny_checkpoint, "--out", tmp_path, *flags)
        assert code == 2 and len(errors) == 1 and errors[0].startswith("error: ") and words in errors[0], errors


def test_evaluate_video_prints_flicker_beside_the_truth(clips, tiny_checkpoint, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("evaluate_script", REPO / "scripts" / "evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = evaluate  # its dataclasses look their module up
    spec.loader.exec_module(evaluate)
    colorizer = Colorizer.from_checkpoint(tiny_checkpoint, "cpu", render_size=32)
    for mode in ("off", "flow"):
        colorize_video(colorizer, clips["film"], tmp_path / f"{mode}.mp4", VideoOptions(temporal=mode))
    clips_args = [str(tmp_path / "off.mp4"), str(tmp_path / "flow.mp4")]
    assert evaluate.main(["--video", *clips_args, "--truth", str(clips["film"]), "--out", str(tmp_path)]) == 0
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in capsys.readouterr().out.splitlines()[2:]}
    assert list(rows) == [*clips_args, "ground truth"]
    summary = json.loads((tmp_path / "video_summary.json").read_text())
    for label, scores in summary.items():
        assert scores["frames"] == sum(SCENES) and scores["cdc"] > 0 and scores["warp_error"] > 0
        assert [float(cell) for cell in rows[label][:4]] == pytest.approx(
            [scores["frames"], scores["cdc"], scores["warp_error"], scores["colorfulness"]], abs=1e-2
        )
    assert "psnr" not in summary["ground truth"]
    assert 10 < summary[clips_args[0]]["psnr"] < 40
    assert evaluate.main(["--video", str(tmp_path / "off.mp4"), "--truth", str(clips["second"])]) == 2
    assert "different frame counts" in capsys.readouterr().err
