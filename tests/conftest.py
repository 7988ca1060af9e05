"""Shared fixtures: small real image files (and broken ones) in the test's tmp_path, and a tiny checkpoint."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def noise_image(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A colourful RGB image of uniform noise; different seeds give different content."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


@pytest.fixture
def noise() -> Callable[..., Image.Image]:
    """:func:`noise_image`, for tests (conftest is not importable under --import-mode=importlib)."""
    return noise_image


def require_shared_data(path: Path = SHARED_DATA) -> Path:
    """``path`` (under ../shared/data); when it is missing the test fails with one line naming it, no traceback."""
    if not path.exists():
        pytest.fail(
            f"{path} is missing: this test reads the real photos of ../shared/data (expected at {SHARED_DATA}, "
            "beside the repository); put the project's shared data folder there.",
            pytrace=False,
        )
    return path


@pytest.fixture
def shared_data() -> Path:
    """The real photos of ../shared/data (read only); a missing folder fails the test with one clear line."""
    return require_shared_data()


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """Write an image file under tmp_path: ``make_image(name, size=(80, 64), mode="RGB", color=None, seed=0,
    **save_options)``; ``color`` None gives colourful noise converted to ``mode``."""

    def make(
        name: str, size: tuple[int, int] = (80, 64), mode: str = "RGB", color=None, seed: int = 0, **options
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img = noise_image(size, seed).convert(mode) if color is None else Image.new(mode, size, color)
        img.save(path, **options)
        return path

    return make


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    """Unreadable files: a zero-byte JPEG, a JPEG cut in half and a text file named .jpg."""
    folder = tmp_path / "bad"
    folder.mkdir()
    buffer = io.BytesIO()
    noise_image((96, 96), seed=99).save(buffer, "JPEG")
    files = {"empty": folder / "empty.jpg", "truncated": folder / "truncated.jpg", "text": folder / "notes.jpg"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    files["text"].write_text("this is not an image\n")
    return files


@pytest.fixture
def dead_pid() -> int:
    """The id of a process that has exited (a killed writer's, for temp-file clean-up)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def write_random_checkpoint(
    path: Path, overrides: Sequence[str] = (), prepare: Callable | None = None, stage: str = "pretrain"
) -> Path:
    """A weights-only checkpoint (config, stage, generator; no training state) of a random U-Net (seed 0) built
    from the default config with ``model.pretrained=none`` and ``overrides``, after ``prepare(generator)``."""
    import torch

    from pix2color.checkpoint import save_checkpoint
    from pix2color.config import load_config
    from pix2color.model_files import inference_checkpoint
    from pix2color.models.generator import build_generator

    cfg = load_config(None, ["model.pretrained=none", *overrides])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        generator = build_generator(cfg.model, cfg.data.size)
        if prepare is not None:
            prepare(generator)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(inference_checkpoint(cfg, generator.state_dict(), stage), path)
    return path


def random_hint_pyramid(generator) -> None:
    """Give a hinted generator's pyramid random kernels (they start at zero), so that hints change its output."""
    import torch

    for conv in generator.hint_pyramid.convs:
        torch.nn.init.normal_(conv.weight)


@pytest.fixture(scope="session")
def write_checkpoint() -> Callable[..., Path]:
    """:func:`write_random_checkpoint`, for tests (conftest is not importable under --import-mode=importlib)."""
    return write_random_checkpoint


@pytest.fixture(scope="session")
def random_pyramid() -> Callable:
    """:func:`random_hint_pyramid`, a ``prepare`` for :func:`write_random_checkpoint`."""
    return random_hint_pyramid


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights-only stage 1 checkpoint: resnet18 U-Net for 64 px, random weights (seed 0), written once per
    session; read-only for the tests."""
    return write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", ["data.size=64"])
