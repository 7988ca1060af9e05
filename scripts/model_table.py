"""Print a markdown table of each encoder's generator: parameters and forward GFLOPs.

FLOPs are counted by torch.utils.flop_counter.FlopCounterMode (a multiply-add counts as 2) for one
image, with random weights (pretrained weights do not change the cost).

    python scripts/model_table.py --size 256
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from pix2color.config import ModelConfig
from pix2color.models.generator import ENCODERS, build_generator

WITHOUT_CROSS_TOO = ("resnet18", "efficientnet_lite0")


def variants() -> Iterator[ModelConfig]:
    """Every encoder with the defaults, and the small ones (the quickstart's candidates) without the
    full-resolution cross block too."""
    for encoder in ENCODERS:
        yield ModelConfig(encoder=encoder, pretrained="none")
        if encoder in WITHOUT_CROSS_TOO:
            yield ModelConfig(encoder=encoder, pretrained="none", last_cross=False)


def measure(cfg: ModelConfig, size: int) -> dict[str, float]:
    """Parameters (all, encoder) and forward FLOPs of one size x size image."""
    generator = build_generator(cfg, size).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        generator(torch.zeros(1, 1, size, size))
    return {
        "params": sum(p.numel() for p in generator.parameters()),
        "encoder_params": sum(p.numel() for p in generator.encoder.parameters()),
        "flops": counter.get_total_flops(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="square input size, a multiple of 32")
    size = parser.parse_args(argv).size
    print(f"| Encoder | last_cross | Parameters | of which encoder | GFLOPs (forward, {size}x{size}) |")
    print("|---|---|---:|---:|---:|")
    for cfg in variants():
        row = measure(cfg, size)
        print(
            f"| {cfg.encoder} | {str(cfg.last_cross).lower()} | {row['params'] / 1e6:.1f} M "
            f"| {row['encoder_params'] / 1e6:.1f} M | {row['flops'] / 1e9:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
