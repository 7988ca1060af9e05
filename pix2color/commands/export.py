"""``pix2color-export`` (``scripts/export.py``): a checkpoint as a release folder to share, or as ONNX / TorchScript.

    pix2color-export runs/r18/checkpoints/gan/best.pt --release releases/r18        # safetensors + config + card
    pix2color-export runs/r18/checkpoints/gan/best.pt --format onnx                  # best.onnx beside it

A release (:mod:`pix2color.release`) loads wherever a checkpoint does (``infer.py --checkpoint DIR``,
``Colorizer.from_pretrained(DIR)``, ``evaluate.py``, ``compare.py``) and runs no code when loaded. The
ONNX and TorchScript models (:mod:`pix2color.export`) map lightness to chroma, any batch and size; ONNX
needs the ``export`` extra. torch loads only once the arguments are parsed, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pix2color.commands.common import run_cli
from pix2color.export import SUFFIXES, export

RELEASE_DTYPES = ("fp16", "fp32")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", type=Path, metavar="CKPT", help="a .pt file from RUN_DIR/checkpoints")
    parser.add_argument("--checkpoint", dest="checkpoint_option", type=Path, metavar="CKPT", help="the same as CKPT")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--release", type=Path, metavar="DIR", help="write a release folder to share (safetensors)")
    what.add_argument("--format", choices=tuple(SUFFIXES), help="write an ONNX or TorchScript model")
    parser.add_argument(
        "--dtype", choices=RELEASE_DTYPES, default="fp16", help="how --release stores the weights (default: fp16)"
    )
    parser.add_argument("--out", type=Path, help="with --format: the file to write (default: beside the checkpoint)")
    parser.add_argument(
        "--size", type=int, help="with --format: side of the traced example, a multiple of 32 (default: training size)"
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (args.checkpoint_option is None):
        parser.error("pass the checkpoint once, as CKPT or as --checkpoint CKPT")
    args.checkpoint = args.checkpoint or args.checkpoint_option
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pix2color-export`` and ``scripts/export.py``; returns the exit code."""
    args = parse_args(argv)

    def run() -> int:
        if args.release is not None:
            from pix2color.release import export_release

            written = export_release(args.checkpoint, args.release, args.dtype)
        else:
            written = export(args.checkpoint, args.format, args.out, args.size)
        print(f"wrote {written}")
        return 0

    return run_cli(run)


if __name__ == "__main__":
    raise SystemExit(main())
