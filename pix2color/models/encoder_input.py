"""How the encoder reads the model's lightness (``model.encoder_input``).

``rgb``: the encoder sees exactly what its ImageNet training saw for a gray photo, the gray image in RGB
normalised as the weights expect, through its unchanged RGB first conv. ``lightness``: L in [-1, 1] goes into
a first conv whose RGB kernels are summed (the layout of checkpoints written before the key existed).

Either way the first conv can read ``extra`` channels after L (``model.hints``: hint chroma and mask) through
kernels initialised to zero, so the encoder starts out computing exactly what it did without them.
"""

from __future__ import annotations

from collections.abc import Callable

import kornia.color
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pix2color.color import l_chroma_to_rgb
from pix2color.config import EncoderInput

Normalization = tuple[float, float, float]  # per RGB channel, for RGB in [0, 1]


class GrayImage(nn.Module):
    """Normalised lightness -> the gray image in RGB, normalised as an encoder's ImageNet weights expect.

    L is turned back into the sRGB gray it came from (:func:`lightness_to_gray`), then a fixed 1x1 conv spreads it
    over three channels as (gray - mean) / std. Its weight and bias are non-persistent buffers: nothing to train
    or save; fastai reads the one input channel of the body off the weight.

    Args:
        mean: the weights' input mean per RGB channel.
        std: their input standard deviation per RGB channel.
        extra: channels after L that are passed through unchanged, after the three gray ones.
    """

    def __init__(self, mean: Normalization, std: Normalization, extra: int = 0):
        super().__init__()
        weight = torch.zeros(3 + extra, 1 + extra, 1, 1)
        weight[:3, 0, 0, 0] = 1 / torch.tensor(std)
        weight[3:, 1:, 0, 0] = torch.eye(extra)
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("bias", torch.cat([-torch.tensor(mean) / torch.tensor(std), torch.zeros(extra)]), False)

    def forward(self, inputs: Tensor) -> Tensor:
        """(B, 1 + extra, H, W): lightness in [-1, 1], then the extra channels -> (B, 3 + extra, H, W): the
        normalised gray RGB, then the extra channels; in the input's dtype."""
        gray = lightness_to_gray(inputs[:, :1]).to(inputs.dtype)
        return F.conv2d(torch.cat([gray, inputs[:, 1:]], dim=1), self.weight, self.bias)


def lightness_to_gray(lightness: Tensor) -> Tensor:
    """(B, 1, H, W) lightness in [-1, 1] -> (B, 1, H, W) the sRGB gray in [0, 1] whose lightness it is.

    Zero chroma through :mod:`pix2color.color` gives a colour of that lightness (CIE L* in Lab and LUV alike) but
    up to 2.4e-5 off gray, as kornia's RGB matrix and Lab white point differ in the fifth digit; its luminance Y,
    made gray, is exact up to rounding (within 3.4e-6 of white, where the colour is clamped, off by at most that).
    """
    chroma = lightness.new_zeros(lightness.shape[0], 2, *lightness.shape[2:])
    luminance = kornia.color.rgb_to_xyz(kornia.color.rgb_to_linear_rgb(l_chroma_to_rgb(lightness, chroma)))[:, 1:2]
    return kornia.color.linear_rgb_to_rgb(luminance.expand(-1, 3, -1, -1))[:, :1]


def gray_image_input(conv: nn.Conv2d, mean: Normalization, std: Normalization, extra: int = 0) -> nn.Module:
    """``conv``, the encoder's RGB first conv, reading the gray image that :class:`GrayImage` makes of L (and
    ``extra`` channels through zero kernels)."""
    return nn.Sequential(GrayImage(mean, std, extra), with_zero_kernels(conv, conv.weight, extra))


def summed_kernels_input(conv: nn.Conv2d, mean: Normalization, std: Normalization, extra: int = 0) -> nn.Conv2d:
    """A copy of ``conv`` reading L directly: its RGB kernels summed, its bias kept (``mean``, ``std`` unused);
    ``extra`` channels after L through zero kernels.

    On a gray image (R = G = B) the summed kernel gives what the RGB kernels gave. fastai's
    ``create_body(n_in=1)`` sums too, but gives the new conv a random bias (VGG's first conv has one).
    """
    return with_zero_kernels(conv, conv.weight.sum(dim=1, keepdim=True), extra)


def with_zero_kernels(conv: nn.Conv2d, kernels: Tensor, extra: int) -> nn.Conv2d:
    """A conv of ``conv``'s geometry and bias whose kernels are ``kernels`` (out, C, k, k) for its first C input
    channels and zeros for ``extra`` more."""
    if not extra and kernels is conv.weight:
        return conv
    copy = nn.Conv2d(
        kernels.shape[1] + extra,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        copy.weight.zero_()
        copy.weight[:, : kernels.shape[1]] = kernels
        if conv.bias is not None:
            copy.bias.copy_(conv.bias)
    return copy


# model.encoder_input -> what replaces the body's RGB first conv, given the normalisation its weights expect and
# the number of extra input channels after L
ENCODER_INPUTS: dict[EncoderInput, Callable[[nn.Conv2d, Normalization, Normalization, int], nn.Module]] = {
    "rgb": gray_image_input,
    "lightness": summed_kernels_input,
}


def read_lightness(
    body: nn.Module, encoder_input: EncoderInput, mean: Normalization, std: Normalization, extra: int = 0
) -> None:
    """Make ``body``, which reads RGB normalised by ``mean`` and ``std``, read (B, 1 + extra, H, W): lightness
    in [-1, 1], then ``extra`` channels that start out ignored (zero kernels).

    Its first conv is replaced by what :data:`ENCODER_INPUTS` makes of it, in place, so the body keeps its
    stages (DynamicUnet hooks them by the sizes they give, and reads its input channels off the first weight).
    """
    name, conv = next((n, m) for n, m in body.named_modules() if isinstance(m, nn.Conv2d))
    body.set_submodule(name, ENCODER_INPUTS[encoder_input](conv, mean, std, extra))
