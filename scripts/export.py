"""Export a checkpoint's generator to ONNX or TorchScript, to run it without pix2color or fastai.

    python scripts/export.py --checkpoint runs/quickstart/checkpoints/gan/best.pt --format onnx

The exported model maps lightness (B, 1, H, W), normalised to [-1, 1], to chroma (B, 2, H, W) in
[-1, 1], in the colour space of the checkpoint's config (``pix2color.color`` has the scaling). The
batch size and H, W (multiples of 32) are free. It runs in float32, with the EMA weights when the
checkpoint has them. ONNX needs the ``export`` extra: ``pip install -e ".[export]"``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from pix2color.commands.common import run_cli
from pix2color.config import check_size
from pix2color.files import atomic_write
from pix2color.inference import load_generator
from pix2color.onnx_runtime import export_onnx, quiet_tracing

SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}


def export(checkpoint: Path, fmt: str, out: Path | None = None, size: int | None = None) -> Path:
    """Write the generator of ``checkpoint`` as ``fmt``; returns the file written.

    Args:
        checkpoint: a pix2color checkpoint.
        fmt: "onnx" or "torchscript".
        out: the file to write; default: beside the checkpoint, ``best.pt`` -> ``best.onnx``.
        size: side of the example input traced at; default: the training size. Any size runs later.

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        ConfigError: a size that is not a multiple of 32; onnx or onnxruntime missing for "onnx".
    """
    generator, cfg = load_generator(checkpoint)
    size = cfg.data.size if size is None else size
    check_size(size, f"--size {size}")
    out = Path(checkpoint).with_suffix(SUFFIXES[fmt]) if out is None else Path(out)
    with atomic_write(out) as handle:
        EXPORTERS[fmt](generator, size, handle)
    return out


def export_torchscript(generator: nn.Module, size: int, out: BinaryIO) -> None:
    """A TorchScript module traced at 1 x 1 x ``size`` x ``size``; any batch and H, W run later."""
    with quiet_tracing():
        torch.jit.save(torch.jit.trace(generator, torch.zeros(1, 1, size, size)), out)


EXPORTERS = {"onnx": export_onnx, "torchscript": export_torchscript}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="a .pt file from RUN_DIR/checkpoints")
    parser.add_argument("--format", required=True, choices=tuple(EXPORTERS))
    parser.add_argument("--out", type=Path, help="file to write (default: beside the checkpoint)")
    parser.add_argument(
        "--size", type=int, help="side of the traced example, a multiple of 32 (default: training size)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def run() -> int:
        print(f"wrote {export(args.checkpoint, args.format, args.out, args.size)}")
        return 0

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
