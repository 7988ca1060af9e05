"""Fixtures for the script tests: tiny checkpoints in a run folder, tiny photos, the scripts as modules.

Helpers are fixtures because pytest runs with --import-mode=importlib: a conftest cannot be imported.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pix2color.checkpoint import save_checkpoint
from pix2color.config import load_config
from pix2color.model_files import inference_checkpoint
from pix2color.models.generator import build_generator

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Two stage checkpoints of one run: ``random`` (a fresh generator) and ``zero`` (it predicts ab = 0)."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = load_config(None, ["model.pretrained=none", "data.size=32", "model.last_cross=false"])
    torch.manual_seed(0)
    generator = build_generator(cfg.model, cfg.data.size)
    paths = {"random": run / "checkpoints" / "pretrain" / "best.pt", "zero": run / "checkpoints" / "gan" / "best.pt"}
    save_checkpoint(inference_checkpoint(cfg, generator.state_dict(), "pretrain"), paths["random"])
    last_conv = [m for m in generator.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.zeros_(last_conv.weight)
    nn.init.zeros_(last_conv.bias)  # the output is sigmoid-scaled to [-1, 1]: a zero logit is chroma 0
    save_checkpoint(inference_checkpoint(cfg, generator.state_dict(), "gan"), paths["zero"])
    return paths


@pytest.fixture(scope="session")
def hinted_checkpoint(tmp_path_factory, write_checkpoint) -> Path:
    """A fresh 32 px generator that takes hints (``model.hints``), saved as ``hinted/best.pt``."""
    return write_checkpoint(
        tmp_path_factory.mktemp("hinted") / "hinted" / "best.pt", ["data.size=32", "model.hints=true"]
    )


@pytest.fixture(scope="session")
def write_photos():
    """``write_photos(folder, count, gray=False)`` -> the paths of ``count`` new 80x60 PNGs."""
    return _write_photos


@pytest.fixture(scope="session")
def load_script():
    """``load_script(name)`` -> scripts/<name>.py as a module."""
    return _load_script


@pytest.fixture(scope="session")
def run_script():
    """``run_script(name, *args)`` -> the finished ``python scripts/<name>.py ARGS`` process."""
    return _run_script


def _write_photos(folder: Path, count: int, gray: bool = False, size=(80, 60)) -> list[Path]:
    """Smooth colorful (or gray) PNG photos, different from each other."""
    folder.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    paths = []
    for i in range(count):
        rgb = np.stack([xs * 3 + 40 * i, ys * 4, (xs + ys) * 2 + 90 * i], axis=-1) % 256
        image = rgb.mean(axis=-1, keepdims=True).repeat(3, axis=-1) if gray else rgb
        paths.append(folder / f"photo{i}.png")
        Image.fromarray(image.astype(np.uint8)).save(paths[-1])
    return paths


def _load_script(name: str):
    """Import scripts/<name>.py as the module ``name``, with scripts/ on sys.path as when it runs."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module(name)


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``python scripts/<name>.py ARGS`` from the repository root, as users do."""
    command = [sys.executable, str(SCRIPTS / f"{name}.py"), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
