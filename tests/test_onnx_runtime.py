"""ONNX Runtime as the generator: same chroma as PyTorch at other batch sizes and sizes; one line without it."""

from __future__ import annotations

import sys

import pytest
import torch

from pix2color.config import ModelConfig
from pix2color.errors import ConfigError
from pix2color.models.generator import build_generator
from pix2color.onnx_runtime import OnnxGenerator


@pytest.fixture(scope="module", params=["regression", "bins"])
def generator(request):
    """A random generator with each chroma head (the bins head's annealed mean is exported with the U-Net)."""
    torch.manual_seed(0)
    cfg = ModelConfig(encoder="resnet18", pretrained="none", last_cross=False, chroma_head=request.param)
    return build_generator(cfg, 64).eval()


def test_matches_pytorch_at_another_batch_and_size(generator):
    onnx_generator = OnnxGenerator.from_module(generator, 64)  # traced at 1 x 1 x 64 x 64
    lightness = torch.rand(3, 1, 96, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        expected = generator(lightness)
    chroma = onnx_generator(lightness.contiguous(memory_format=torch.channels_last))
    assert chroma.shape == (3, 2, 96, 128) and chroma.dtype == torch.float32
    assert expected.abs().max() > 0.05  # a random generator: not a trivially zero output
    torch.testing.assert_close(chroma, expected, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_without_the_export_extra_says_what_to_install(generator, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # makes "import <missing>" raise ImportError
    with pytest.raises(ConfigError, match=rf'needs the {missing} package: pip install -e "\.\[export\]"'):
        OnnxGenerator.from_module(generator, 64)


def test_a_generator_that_takes_hints_exports_them_as_a_second_input(random_pyramid):
    torch.manual_seed(0)
    cfg = ModelConfig(encoder="resnet18", pretrained="none", last_cross=False, hints=True)
    generator = build_generator(cfg, 64).eval()
    random_pyramid(generator)  # kernels that start at zero: make the hints matter
    onnx_generator = OnnxGenerator.from_module(generator, 64)
    assert [item.name for item in onnx_generator.session.get_inputs()] == ["lightness", "hints"]
    assert onnx_generator.takes_hints
    lightness = torch.rand(2, 1, 96, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    hints = torch.zeros(2, 3, 96, 64)
    hints[:, :, 30:36, 20:26] = torch.tensor([0.6, -0.4, 1.0])[:, None, None]
    with torch.no_grad():
        expected, automatic = generator(lightness, hints=hints), generator(lightness)
    assert (expected - automatic).abs().max() > 0.05
    torch.testing.assert_close(onnx_generator(lightness, hints=hints), expected, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(onnx_generator(lightness), automatic, atol=1e-4, rtol=1e-3)


def test_a_generator_without_hints_exports_lightness_alone_and_refuses_hints(generator):
    onnx_generator = OnnxGenerator.from_module(generator, 64)
    assert [item.name for item in onnx_generator.session.get_inputs()] == ["lightness"]
    with pytest.raises(ValueError, match="exported without model.hints"):
        onnx_generator(torch.zeros(1, 1, 64, 64), hints=torch.zeros(1, 3, 64, 64))
