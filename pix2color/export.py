"""A checkpoint's generator as a file that runs without pix2color: ONNX or TorchScript.

Both map lightness (B, 1, H, W), normalized to [-1, 1], to chroma (B, 2, H, W) in [-1, 1], in the color
space of the checkpoint's config (``pix2color.color`` has the scaling); a model trained with ``model.hints``
takes hints (B, 3, H, W) as its second input (``pix2color.hints``: hint chroma, 0 where there is none, and a
0/1 mask); batch and H, W (multiples of 32) are free; they run in float32 with the EMA weights when the
checkpoint has them. ONNX needs the ``export`` extra. torch loads only when a model is written, so a CLI's
``--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pix2color.config import check_size
from pix2color.files import atomic_write

if TYPE_CHECKING:
    from torch import nn

SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}


def export(checkpoint: str | Path, fmt: str, out: str | Path | None = None, size: int | None = None) -> Path:
    """Write the generator of ``checkpoint`` as ``fmt``; returns the file written.

    Args:
        checkpoint: a pix2color checkpoint or release folder.
        fmt: "onnx" or "torchscript".
        out: the file to write; default: beside the checkpoint, ``best.pt`` -> ``best.onnx``.
        size: side of the example input (1, 1, size, size) traced at; default: the training size. Any
            size runs later.

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        ConfigError: a size that is not a multiple of 32; onnx or onnxruntime missing for "onnx".
    """
    from pix2color.model_files import load_generator
    from pix2color.onnx_runtime import export_onnx

    generator, cfg = load_generator(checkpoint)
    size = cfg.data.size if size is None else size
    check_size(size, f"--size {size}")
    out = Path(checkpoint).with_suffix(SUFFIXES[fmt]) if out is None else Path(out)
    with atomic_write(out) as handle:
        (export_onnx if fmt == "onnx" else export_torchscript)(generator, size, handle)
    return out


def export_torchscript(generator: nn.Module, size: int, out: BinaryIO) -> None:
    """Write ``generator`` as TorchScript, traced at (1, 1, ``size``, ``size``) (and hints, for a model that takes
    them); any batch and H, W run later."""
    import torch

    from pix2color.onnx_runtime import quiet_tracing, traced_inputs

    module, examples, _ = traced_inputs(generator, size)
    with quiet_tracing():
        torch.jit.save(torch.jit.trace(module, examples), out)
