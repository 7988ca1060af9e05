"""scripts/export.py: each format written where the flags say, and user errors as one line with exit code 2.

What the files hold is tested in tests/test_export.py (models) and tests/test_release.py (release folders).
"""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors import safe_open


@pytest.fixture(scope="module")
def export(load_script):
    return load_script("export")


def test_format_writes_the_out_file_and_says_so(tmp_path, checkpoints, export, capsys):
    out = tmp_path / "generator.onnx"
    argv = ["--checkpoint", str(checkpoints["random"]), "--format", "onnx", "--out", str(out), "--size", "64"]
    assert export.main(argv) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.stat().st_size > 0


def test_checkpoint_as_argument_writes_torchscript_beside_it(tmp_path, checkpoints, export):
    checkpoint = tmp_path / "best.pt"
    shutil.copy(checkpoints["random"], checkpoint)
    assert export.main([str(checkpoint), "--format", "torchscript"]) == 0
    assert isinstance(torch.jit.load(str(tmp_path / "best.torchscript.pt")), torch.jit.ScriptModule)


def test_release_writes_a_folder_in_the_dtype_asked_for(tmp_path, checkpoints, export):
    assert export.main([str(checkpoints["zero"]), "--release", str(tmp_path / "release"), "--dtype", "fp32"]) == 0
    (weights_file,) = (tmp_path / "release").glob("*.safetensors")
    with safe_open(weights_file, "pt") as weights:
        assert weights.metadata()["dtype"] == "fp32"


def test_bad_size_and_bad_checkpoint_are_one_line(tmp_path, checkpoints, export, capsys):
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


def test_checkpoint_twice_is_a_usage_error(checkpoints, export, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export.main([str(checkpoints["zero"]), "--checkpoint", str(checkpoints["zero"]), "--format", "onnx"])
    assert exit_info.value.code == 2
    assert "pass the checkpoint once" in capsys.readouterr().err
