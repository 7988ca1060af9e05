"""Nasty inputs made on the spot, tiny checkpoints, and the checks every robustness case shares.

Every file here is written by the tests into ``tmp_path``; nothing is read from the repository except
the one photo with a broken EXIF block in the shared data folder, which is copied into ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import io
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BROKEN_EXIF_PHOTO = REPO.parent / "shared" / "data" / "bw" / "DeOldify__bicycles.jpg"
BOMB_SIDE = 20_000
# What every tiny training run overrides: 64 px, no pretrained download, no loader processes, fp32.
TINY_TRAINING = (
    "data.size=64",
    "model.pretrained=none",
    "model.last_cross=false",
    "train.batch_size=4",
    "data.workers=0",
    "train.amp=false",
    "train.channels_last=false",
    "train.device=cpu",
    "data.max_val_images=4",
    "data.grid_images=2",
    "data.val_fraction=0.2",
)


# --- image files ---------------------------------------------------------------------------------------------------


def photo(size: tuple[int, int] = (48, 40), seed: int = 0) -> Image.Image:
    """A colourful RGB image: smooth gradients plus noise, different for every seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w, 1), yy * 255 / max(h, 1), np.full((h, w), rng.integers(0, 256))], axis=-1)
    pixels = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def write_photos(folder: Path, count: int, size: tuple[int, int] = (48, 40), first_seed: int = 0) -> list[Path]:
    """``count`` good JPEG photos named photo_000.jpg, ... in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"photo_{i:03d}.jpg"
        path.write_bytes(encode(photo(size, first_seed + i), "JPEG", quality=90))
        paths.append(path)
    return paths


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit grayscale PNG of side x side pixels, written row by row: about 50 kB, never a big buffer."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def exif_block(entries: list[tuple[int, int, int, int]], truncate: int = 0) -> bytes:
    """An APP1 Exif payload holding one IFD of (tag, type, count, value) entries; ``truncate`` cuts bytes off."""
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *entry) for entry in entries)
    payload = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"
    return payload[: len(payload) - truncate] if truncate else payload


def jpeg_with_app1(img: Image.Image, payload: bytes) -> bytes:
    data = encode(img, "JPEG", quality=90)
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def make_zero_byte(folder: Path) -> Path:
    return write(folder / "zero_byte.jpg", b"")


def make_truncated_jpeg(folder: Path) -> Path:
    data = encode(photo((96, 96), seed=7), "JPEG", quality=95)
    return write(folder / "truncated.jpg", data[: len(data) // 2])


def make_text_named_jpg(folder: Path) -> Path:
    return write(folder / "notes.jpg", b"this is a text file, not a photo\n")


def make_png_bad_crc(folder: Path) -> Path:
    data = bytearray(encode(photo(seed=8), "PNG"))
    data[29:33] = bytes(b ^ 0xFF for b in data[29:33])  # the IHDR chunk's CRC
    return write(folder / "bad_crc.png", bytes(data))


def make_bomb(folder: Path) -> Path:
    return write(folder / "bomb_20000x20000.png", bomb_png())


def make_cmyk_jpeg(folder: Path) -> Path:
    return write(folder / "cmyk.jpg", encode(Image.new("CMYK", (40, 32), (0, 255, 255, 0)), "JPEG"))  # red


def make_16bit_png(folder: Path) -> Path:
    return write(folder / "sixteen_bit.png", encode(Image.fromarray(np.full((32, 40), 32768, np.uint16)), "PNG"))


def make_palette_transparent(folder: Path) -> Path:
    img = photo(seed=9).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return write(folder / "palette_transparent.png", encode(img, "PNG", transparency=0))


def make_la(folder: Path) -> Path:
    gray = photo(seed=10).convert("L")
    img = Image.merge("LA", (gray, Image.new("L", gray.size, 128)))
    return write(folder / "gray_alpha.png", encode(img, "PNG"))


def make_one_pixel(folder: Path) -> Path:
    return write(folder / "one_pixel.png", encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"))


def make_exif_rotated(folder: Path) -> Path:
    """Stored 48 wide x 32 high, left half red, with orientation 6: shown 32 wide x 48 high, red on top."""
    pixels = np.zeros((32, 48, 3), np.uint8)
    pixels[:, :24] = (220, 20, 20)
    pixels[:, 24:] = (20, 20, 220)
    orientation = [(0x0112, 3, 1, 6)]
    return write(folder / "exif_rotated.jpg", jpeg_with_app1(Image.fromarray(pixels), exif_block(orientation)))


def make_broken_exif(folder: Path) -> Path:
    """An Exif block whose IFD claims five entries and is cut short inside the first."""
    payload = exif_block([(0x0112, 3, 1, 6)] * 5, truncate=60)
    return write(folder / "broken_exif.jpg", jpeg_with_app1(photo(seed=11), payload))


def copy_broken_exif_photo(folder: Path) -> Path:
    """The real historical photo the data README names for its broken EXIF block (copied, never modified)."""
    from tests.conftest import require_shared_data

    target = folder / BROKEN_EXIF_PHOTO.name
    shutil.copyfile(require_shared_data(BROKEN_EXIF_PHOTO), target)
    return target


def make_animated_gif(folder: Path) -> Path:
    frames = [photo(seed=s).convert("P") for s in (12, 13, 14)]
    return write(folder / "animated.gif", encode(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0))


def make_no_read_permission(folder: Path) -> Path:
    """A good JPEG with mode 000. Root (these tests' usual user) can still read it: see :func:`can_read`."""
    path = write(folder / "no_permission.jpg", encode(photo(seed=15), "JPEG"))
    path.chmod(0)
    return path


def make_non_utf8_name(folder: Path) -> Path:
    """A good PNG whose name is not valid UTF-8 (Latin-1 'café'); Python sees it with a surrogate escape."""
    name = os.fsdecode(b"caf\xe9.png")
    return write(folder / name, encode(photo(seed=16), "PNG"))


def make_directory_named_jpg(folder: Path) -> Path:
    path = folder / "folder.jpg"
    path.mkdir()
    return path


def make_fifo_named_jpg(folder: Path) -> Path:
    """A named pipe: opening it for reading would block forever, so no loader may open it."""
    path = folder / "pipe.jpg"
    os.mkfifo(path)
    return path


def make_symlink_loop(folder: Path) -> Path:
    """loop_a.jpg -> loop_b.jpg -> loop_a.jpg, and a folder link to the folder itself."""
    os.symlink("loop_b.jpg", folder / "loop_a.jpg")
    os.symlink("loop_a.jpg", folder / "loop_b.jpg")
    os.symlink(".", folder / "self_link")
    return folder / "loop_a.jpg"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def can_read(path: Path) -> bool:
    """Whether this process can open ``path``: chmod 000 does not stop root."""
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


# Files every decoder must refuse with one line naming them.
UNREADABLE = {
    "zero-byte": make_zero_byte,
    "truncated JPEG": make_truncated_jpeg,
    "text file named .jpg": make_text_named_jpg,
    "PNG with a bad CRC": make_png_bad_crc,
    "20000x20000 bomb": make_bomb,
}
# Files every decoder must turn into an ordinary RGB image.
DECODABLE = {
    "CMYK JPEG": make_cmyk_jpeg,
    "16-bit PNG": make_16bit_png,
    "palette with transparency": make_palette_transparent,
    "LA": make_la,
    "1x1": make_one_pixel,
    "EXIF-rotated": make_exif_rotated,
    "broken EXIF (made)": make_broken_exif,
    "broken EXIF (real photo)": copy_broken_exif_photo,
    "animated GIF": make_animated_gif,
    "non-UTF-8 name": make_non_utf8_name,
}
# Entries that are not image files at all: never listed, never opened, never a hang.
NOT_FILES = {
    "directory named x.jpg": make_directory_named_jpg,
    "FIFO named x.jpg": make_fifo_named_jpg,
    "symlink loop": make_symlink_loop,
}
# Header-level failures: refused before training starts (the truncated JPEG's header is fine).
HEADER_UNREADABLE = {name: make for name, make in UNREADABLE.items() if name != "truncated JPEG"}


@dataclasses.dataclass
class NastyFolder:
    """A folder of good photos plus every nasty entry, and which is which."""

    root: Path
    good: list[Path]
    unreadable: list[Path]
    decodable: list[Path]

    def snapshot(self) -> dict[str, str]:
        return snapshot(self.root)


def make_nasty_folder(root: Path, good_photos: int = 4, not_files: bool = True) -> NastyFolder:
    """``good_photos`` photos, every UNREADABLE and DECODABLE file, and (optionally) the NOT_FILES entries."""
    good = write_photos(root, good_photos)
    unreadable = [make(root) for make in UNREADABLE.values()]
    decodable = [make(root) for make in DECODABLE.values()]
    if not_files:
        for make in NOT_FILES.values():
            make(root)
    return NastyFolder(root, good, unreadable, decodable)


@pytest.fixture
def nasty_folder(tmp_path: Path) -> NastyFolder:
    return make_nasty_folder(tmp_path / "photos")


@pytest.fixture
def fifo_guard() -> Iterator[Callable[[Path], list[bool]]]:
    """``opened = guard(fifo)``: a reader of the FIFO gets end-of-file at once instead of hanging forever.

    A daemon thread opens the write end, which blocks until some reader opens the FIFO, then closes it and
    appends True to ``opened``. At teardown a thread still waiting is released by opening the read end here.
    """
    waiting: list[tuple[Path, threading.Thread]] = []

    def guard(fifo: Path) -> list[bool]:
        opened: list[bool] = []

        def unblock() -> None:
            with open(fifo, "wb"):
                opened.append(True)

        thread = threading.Thread(target=unblock, daemon=True)
        thread.start()
        waiting.append((fifo, thread))
        return opened

    yield guard
    for fifo, thread in waiting:
        if thread.is_alive():
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            thread.join(5)
            os.close(fd)


# --- checks --------------------------------------------------------------------------------------------------------

_PROGRESS = re.compile(r"^\s*[^|]*\d+%\|")  # a tqdm redraw: "pretrain 1:  25%|██   | 1/4 ..."


def message_lines(stderr: str) -> list[str]:
    """The non-empty lines of stderr, progress-bar redraws (carriage-return separated) left out."""
    return [line for line in re.split(r"[\r\n]+", stderr) if line.strip() and not _PROGRESS.match(line)]


def assert_one_error_line(stderr: str, *needles: str) -> str:
    """stderr holds exactly one message line, ``error: ...``, naming every needle; no traceback."""
    lines = message_lines(stderr)
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not named in: {line}"
    return line


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every regular file under ``root`` (links and pipes are left alone)."""
    result = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                result[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
            except PermissionError:
                result[str(path.relative_to(root))] = "unreadable"
    return result


# --- checkpoints ---------------------------------------------------------------------------------------------------


def tiny_config(encoder: str = "resnet18"):
    from pix2color.config import load_config

    # Real photos, so that a resumed run gets past its data and the checkpoint itself is what fails.
    from tests.conftest import require_shared_data

    photos = require_shared_data(REPO.parent / "shared" / "data" / "val")
    return load_config(None, [*TINY_TRAINING, f"model.encoder={encoder}", f"data.train=[{photos}]"])


def write_checkpoint(path: Path, encoder: str = "resnet18", config_encoder: str | None = None) -> Path:
    """An untrained weights-only stage 1 checkpoint: ``encoder`` weights, ``config_encoder`` in its config."""
    from pix2color.checkpoint import save_checkpoint
    from pix2color.model_files import inference_checkpoint
    from pix2color.models.generator import build_generator

    cfg = tiny_config(encoder)
    generator = build_generator(cfg.model, cfg.data.size)
    stored = tiny_config(config_encoder or encoder)
    save_checkpoint(inference_checkpoint(stored, generator.state_dict(), "pretrain"), path)
    return path


def delete_checkpoints(root: Path) -> None:
    """Tiny runs still write 370 MB checkpoints (ResNet18 U-Net + Adam); module fixtures keep theirs till the end."""
    for path in root.rglob("*.pt"):
        path.unlink()


class RunsCode:
    """Unpickling this creates ``marker``: a checkpoint carrying it must be refused, never executed."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def write_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint-shaped dict whose generator entry runs code when unpickled with weights_only=False."""
    import torch

    state = {"format_version": 1, "config": {}, "stage": "pretrain", "generator": RunsCode(marker)}
    torch.save(state, path)
    return path


@functools.cache
def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` once, as module ``<name>`` like ``python scripts/<name>.py`` sees its siblings."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


# --- processes -----------------------------------------------------------------------------------------------------

# One math thread per process: on two shared cores, torch's default of two threads per process makes each
# training step about ten times slower under load.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_command(*args: str | Path, overrides: tuple[str, ...] = ()) -> list[str]:
    """``python train.py ARGS --set TINY_TRAINING... OVERRIDES...``."""
    return cli("train.py", *args, "--set", *TINY_TRAINING, *overrides)


def cli(*args: str | Path) -> list[str]:
    return [sys.executable, *(str(a) for a in args)]


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command in the repository root with one math thread and capture text output."""
    env = os.environ | ONE_THREAD
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


class BackgroundRun:
    """A command started at once; with ``sig``, its process gets ``sig`` as soon as the file ``trigger`` exists.

    A watcher thread polls every 50 ms, so several runs can start together and overlap their slow start-up;
    output goes to files in ``logs`` (no pipe can fill up and stall the process).
    """

    def __init__(
        self, args: list[str], logs: Path, trigger: Path | None = None, sig: signal.Signals | None = None
    ) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout, self.stderr = logs / "stdout.txt", logs / "stderr.txt"
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen(args, cwd=REPO, env=os.environ | ONE_THREAD, stdout=out, stderr=err)
        self.signalled = False
        self.watcher = threading.Thread(target=self._watch, args=(trigger, sig), daemon=True)
        if sig is not None:
            self.watcher.start()

    def _watch(self, trigger: Path, sig: signal.Signals) -> None:
        while self.process.poll() is None and not trigger.exists():
            time.sleep(0.05)
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.signalled = True

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        """Wait for the process (killing it after ``timeout``); returns (exit code, stdout, stderr)."""
        try:
            self.process.wait(timeout)
        finally:
            self.process.kill()
            self.process.wait()
        if self.watcher.is_alive():
            self.watcher.join(1)
        code = self.process.returncode
        return code, self.stdout.read_text(errors="replace"), self.stderr.read_text(errors="replace")

    def stop(self) -> None:
        """Kill the process if it still runs (teardown after a test that failed early)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
