"""scripts/export.py: ONNX and TorchScript exports match the eager generator at other batch sizes and sizes."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime
import pytest
import torch

from pix2color.inference import load_generator


@pytest.fixture(scope="module")
def eager(checkpoints):
    """The checkpoint's generator and its chroma for a batch of 2 at 96x128 (exports trace at 1x64x64)."""
    generator, _ = load_generator(checkpoints["random"])
    lightness = torch.rand(2, 1, 96, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        return lightness, generator(lightness)


def test_onnx_runtime_matches_pytorch(tmp_path, checkpoints, load_script, eager, capsys):
    out = tmp_path / "generator.onnx"
    argv = ["--checkpoint", str(checkpoints["random"]), "--format", "onnx", "--out", str(out), "--size", "64"]
    assert load_script("export").main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    lightness, chroma = eager
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (result,) = session.run(["chroma"], {"lightness": lightness.numpy()})
    assert result.shape == (2, 2, 96, 128)
    assert np.abs(result - chroma.numpy()).max() < 1e-3


def test_torchscript_matches_eager_and_is_written_beside_the_checkpoint(tmp_path, checkpoints, load_script, eager):
    checkpoint = tmp_path / "best.pt"
    shutil.copy(checkpoints["random"], checkpoint)
    assert load_script("export").main(["--checkpoint", str(checkpoint), "--format", "torchscript"]) == 0
    scripted = torch.jit.load(str(tmp_path / "best.torchscript.pt"))
    lightness, chroma = eager
    with torch.no_grad():
        torch.testing.assert_close(scripted(lightness), chroma, atol=1e-5, rtol=0)


def test_bad_size_and_bad_checkpoint_are_one_line(tmp_path, checkpoints, load_script, capsys):
    export = load_script("export")
    assert export.main(["--checkpoint", str(checkpoints["random"]), "--format", "onnx", "--size", "100"]) == 2
    assert capsys.readouterr().err.strip() == "error: --size 100 must be a positive multiple of 32; " + (
        "nearest valid sizes: 96, 128."
    )
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoints["random"].read_bytes()[:4096])
    assert export.main(["--checkpoint", str(truncated), "--format", "torchscript"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: checkpoint ") and str(truncated) in err and err.count("\n") == 1
    assert not list(tmp_path.glob("truncated.torchscript*"))
