"""The hints at every scale of the U-Net (``model.hints``): pooled to each encoder stage's resolution and added
to that stage's output through 1x1 convs that start at zero.

Through the first conv alone, a hint reaches the decoder's coarse features only through the whole pretrained
encoder, which trains at a tenth of the decoder's learning rate; spreading a colour across an object needs
those coarse features. Here every stage whose output the decoder reads (the skips and the encoder's output)
also gets, per cell, the mean chroma of the hints inside it and whether there are any, so the decoder can
carry a colour as far as its coarse features reach from the first step. The kernels start at zero: a model
starts out computing exactly what it did without the hints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POOLED_CHANNELS = 3  # per cell: the mean hint chroma (2) and whether any hint lies in it (1)


class HintPyramid(nn.Module):
    """Adds pooled hints to chosen encoder stages' outputs, through forward hooks that run before fastai's.

    Args:
        stages: the encoder stages (modules) whose outputs get the hints.
        channels: each stage's output channels.
        strides: each stage's stride: its output is the input's size divided by it.
    """

    def __init__(self, stages: Sequence[nn.Module], channels: Sequence[int], strides: Sequence[int]):
        super().__init__()
        self.convs = nn.ModuleList(_zero_conv(POOLED_CHANNELS, count) for count in channels)
        self.hints: Tensor | None = None  # set by the generator for the length of one forward pass
        for conv, stage, stride in zip(self.convs, stages, strides, strict=True):
            stage.register_forward_hook(_StageHook(self, conv, stride), prepend=True)

    def add(self, conv: nn.Conv2d, stride: int, features: Tensor) -> Tensor:
        """``features`` (B, C, H / stride, W / stride) plus ``conv`` of the current hints pooled by ``stride``."""
        if self.hints is None:
            return features
        return features + conv(pool_hints(self.hints, stride).to(features.dtype))


class _StageHook:
    """A stage's forward hook: its output with the hints added (a class, so that deep copies rebind it)."""

    def __init__(self, pyramid: HintPyramid, conv: nn.Conv2d, stride: int):
        self.pyramid, self.conv, self.stride = pyramid, conv, stride

    def __call__(self, stage: nn.Module, args: tuple[Tensor, ...], features: Tensor) -> Tensor:
        return self.pyramid.add(self.conv, self.stride, features)


def pool_hints(hints: Tensor, stride: int) -> Tensor:
    """(B, 3, H, W) hints (chroma 0 where there is none, then the mask) -> (B, 3, H / stride, W / stride): per
    ``stride`` x ``stride`` cell, the mean chroma of its hinted pixels (0 where there are none) and 1 where it
    has any. A fixed stride, not an output size, so that an ONNX export keeps H and W free."""
    chroma, mask = hints[:, :2], hints[:, 2:]
    share = F.avg_pool2d(mask, stride)
    mean = F.avg_pool2d(chroma, stride) / share.clamp_min(torch.finfo(share.dtype).tiny)
    return torch.cat([mean, (share > 0).to(hints.dtype)], dim=1)


def _zero_conv(inputs: int, outputs: int) -> nn.Conv2d:
    conv = nn.Conv2d(inputs, outputs, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv
