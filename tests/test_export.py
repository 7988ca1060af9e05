"""pix2color.export: ONNX and TorchScript files match the eager generator at other batch sizes and sizes."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime
import pytest
import torch

from pix2color.errors import CheckpointError, ConfigError
from pix2color.export import export
from pix2color.model_files import load_generator


@pytest.fixture(scope="module")
def eager(tiny_checkpoint):
    """The checkpoint's generator's chroma for a batch of 2 at 96x128 (the exports trace at 1x1x64x64)."""
    generator, _ = load_generator(tiny_checkpoint)
    lightness = torch.rand(2, 1, 96, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        return lightness, generator(lightness)


def test_onnx_runtime_matches_pytorch(tmp_path, tiny_checkpoint, eager):
    out = tmp_path / "generator.onnx"
    assert export(tiny_checkpoint, "onnx", out, size=64) == out
    lightness, chroma = eager
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (result,) = session.run(["chroma"], {"lightness": lightness.numpy()})
    assert result.shape == (2, 2, 96, 128)
    assert np.abs(result - chroma.numpy()).max() < 1e-3


def test_torchscript_matches_eager_and_is_written_beside_the_checkpoint(tmp_path, tiny_checkpoint, eager):
    checkpoint = tmp_path / "best.pt"
    shutil.copy(tiny_checkpoint, checkpoint)
    assert export(checkpoint, "torchscript") == tmp_path / "best.torchscript.pt"
    scripted = torch.jit.load(str(tmp_path / "best.torchscript.pt"))
    lightness, chroma = eager
    with torch.no_grad():
        torch.testing.assert_close(scripted(lightness), chroma, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def hinted_checkpoint(tmp_path_factory, write_checkpoint, random_pyramid):
    """A 64 px resnet18 U-Net built with ``model.hints`` whose hint pyramid's kernels are random."""
    overrides = ["data.size=64", "model.hints=true", "model.last_cross=false"]
    return write_checkpoint(tmp_path_factory.mktemp("hinted") / "best.pt", overrides, prepare=random_pyramid)


def test_both_exports_of_a_model_that_takes_hints_read_them_as_their_second_input(tmp_path, hinted_checkpoint):
    generator, _ = load_generator(hinted_checkpoint)
    lightness = torch.rand(2, 1, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1
    hints = torch.zeros(2, 3, 64, 96)
    hints[:, :, 10:20, 40:50] = torch.tensor([-0.5, 0.7, 1.0])[:, None, None]
    with torch.no_grad():
        expected = generator(lightness, hints=hints)
        assert (expected - generator(lightness)).abs().max() > 0.05
        onnx_file, scripted_file = (
            export(hinted_checkpoint, "onnx", tmp_path / "g.onnx"),
            export(hinted_checkpoint, "torchscript", tmp_path / "g.torchscript.pt"),
        )
        torch.testing.assert_close(torch.jit.load(str(scripted_file))(lightness, hints), expected, atol=1e-5, rtol=0)
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == ["lightness", "hints"]
    (result,) = session.run(["chroma"], {"lightness": lightness.numpy(), "hints": hints.numpy()})
    assert np.abs(result - expected.numpy()).max() < 1e-3


def test_a_size_off_the_grid_names_the_nearest_valid_ones(tmp_path, tiny_checkpoint):
    with pytest.raises(ConfigError, match=r"^--size 100 must be a positive multiple of 32; nearest valid sizes: 96,"):
        export(tiny_checkpoint, "onnx", tmp_path / "generator.onnx", size=100)
    assert not list(tmp_path.iterdir())


def test_a_truncated_checkpoint_writes_nothing(tmp_path, tiny_checkpoint):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:4096])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        export(truncated, "torchscript")
    assert list(tmp_path.iterdir()) == [truncated]
