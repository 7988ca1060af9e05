"""The U-Net generator: fastai's DynamicUnet on a pretrained encoder (torchvision's or EfficientNet-Lite), lightness
in, chroma out.

fastai is imported inside the functions that build the model: ``import fastai.vision`` costs about 5 s.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torchvision
from torch import Tensor, nn

from pix2color.config import ChromaHead, Encoder, EncoderInput, ModelConfig, check_size, nearest_sizes
from pix2color.hints import HINT_CHANNELS
from pix2color.models.chroma_bins import AnnealedMean, ChromaBins
from pix2color.models.efficientnet_lite import LITE_MEAN, LITE_STD, lite_body
from pix2color.models.encoder_input import read_lightness
from pix2color.models.fusion import GlobalFusion, build_fusion
from pix2color.models.hint_pyramid import HintPyramid
from pix2color.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_torchvision_model

# fastai's layers still call torch.jit.script at import time; the deprecation notice is noise to our users.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)


@dataclass(frozen=True)
class EncoderSpec:
    """One encoder: how its body is built and the input normalisation its ImageNet weights were trained with.

    Attributes:
        body: ``pretrained`` -> the body reading RGB, a Sequential of the stages DynamicUnet hooks.
        mean: the weights' input mean per RGB channel, for RGB in [0, 1].
        std: their input standard deviation per RGB channel.
    """

    body: Callable[[str], nn.Sequential]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _torchvision_body(
    builder: Callable[..., nn.Module], pretrained: str, cut: Callable[[nn.Module], nn.Module] | None = None
) -> nn.Sequential:
    """The body of a torchvision classifier: fastai's default cut (everything before the pooling head), or ``cut``."""
    from fastai.vision.learner import create_body

    return create_body(load_torchvision_model(builder, pretrained), cut=cut)


def _torchvision(builder: Callable[..., nn.Module], cut: Callable[[nn.Module], nn.Module] | None = None) -> EncoderSpec:
    return EncoderSpec(partial(_torchvision_body, builder, cut=cut), IMAGENET_MEAN, IMAGENET_STD)


def _lite(name: str) -> EncoderSpec:
    return EncoderSpec(partial(lite_body, name), LITE_MEAN, LITE_STD)


ENCODERS: dict[Encoder, EncoderSpec] = {
    "resnet18": _torchvision(torchvision.models.resnet18),
    "resnet34": _torchvision(torchvision.models.resnet34),
    "resnet50": _torchvision(torchvision.models.resnet50),
    "resnet101": _torchvision(torchvision.models.resnet101),
    # VGG's stages are the layers of its ``features``
    "vgg16_bn": _torchvision(torchvision.models.vgg16_bn, lambda model: model.features),
    "efficientnet_lite0": _lite("efficientnet_lite0"),
    "efficientnet_lite1": _lite("efficientnet_lite1"),
    "efficientnet_lite2": _lite("efficientnet_lite2"),
}


def _regression_head(cfg: ModelConfig, space: str) -> tuple[int, tuple[float, float] | None, nn.Module]:
    """Two channels squashed into [-1, 1]: the chroma itself."""
    return 2, (-1.0, 1.0), nn.Identity()


def _bins_head(cfg: ModelConfig, space: str) -> tuple[int, tuple[float, float] | None, nn.Module]:
    """One logit per chroma bin, decoded by the annealed mean (Zhang et al.)."""
    bins = ChromaBins(space)
    return len(bins), None, AnnealedMean(bins, cfg.bins_temperature)


# model.chroma_head -> (U-Net output channels, their y_range, the module that turns them into chroma)
CHROMA_HEADS: dict[ChromaHead, Callable[[ModelConfig, str], tuple[int, tuple[float, float] | None, nn.Module]]] = {
    "regression": _regression_head,
    "bins": _bins_head,
}


class Generator(nn.Module):
    """Maps lightness to chroma with a U-Net whose encoder can be frozen for transfer learning.

    Not re-entrant: a forward pass keeps state on its modules while it runs (fastai's skip activations, the hint
    pyramid's hints), so one instance must not run in two threads at once (the server runs it on one worker).

    Args:
        unet: a fastai DynamicUnet whose first layer is the encoder.
        fusion: fuses a global image embedding into the encoder's output, or None.
        head: turns the U-Net's output into chroma (:data:`CHROMA_HEADS`); None: the output is the chroma.
        batchnorm_frozen: the encoder's BatchNorm layers stay in eval mode (their running statistics fixed)
            even under ``train()``; their weights still train.
        hint_pyramid: adds the hints to the encoder's stages at their resolutions, for a model that takes hints.
    """

    def __init__(
        self,
        unet: nn.Module,
        fusion: GlobalFusion | None = None,
        head: nn.Module | None = None,
        batchnorm_frozen: bool = False,
        hint_pyramid: HintPyramid | None = None,
    ):
        super().__init__()
        self.unet = unet
        self.fusion = fusion
        self.hint_pyramid = hint_pyramid
        self.head = head if head is not None else nn.Identity()
        self.encoder_frozen = False
        self.batchnorm_frozen = batchnorm_frozen
        self.takes_hints = _input_channels(self.encoder) > 1  # model.hints: the U-Net reads hints beside L
        if fusion is not None:
            self.encoder.register_forward_hook(self._fuse)

    @property
    def encoder(self) -> nn.Module:
        """The pretrained body, the U-Net's first layer."""
        return self.unet[0]

    def forward(self, lightness: Tensor, decode: bool = True, hints: Tensor | None = None) -> Tensor:
        """Predict chroma.

        Args:
            lightness: (B, 1, H, W) in [-1, 1]; H and W multiples of 32, any size.
            decode: False returns what the head reads (a bins head's (B, Q, H, W) logits), for its loss.
            hints: (B, 3, H, W): hint chroma in [-1, 1] (0 where there is none) and a 0/1 mask, for a model built
                with ``model.hints``; None gives it no hints (automatic colorization).

        Returns:
            (B, 2, H, W) chroma in [-1, 1]; with ``decode=False`` and a bins head, (B, Q, H, W) logits.
        """
        _check_lightness(lightness)
        hints = self._hints(lightness, hints)
        if self.hint_pyramid is not None:
            self.hint_pyramid.hints = hints
        try:
            output = self.unet(lightness if hints is None else torch.cat([lightness, hints], dim=1))
        finally:
            if self.hint_pyramid is not None:
                self.hint_pyramid.hints = None
            for hook in self.unet.sfs:  # fastai keeps the skip activations: drop them (memory, deepcopy for EMA)
                hook.stored = None
        return self.head(output) if decode else output

    def _hints(self, lightness: Tensor, hints: Tensor | None) -> Tensor | None:
        """The hints the U-Net reads, in the lightness' dtype (zeros when none are given), or None for a model
        without hints."""
        if not self.takes_hints:
            if hints is not None:
                raise ValueError("this generator was built without model.hints; it takes no hints")
            return None
        if hints is None:
            return lightness.new_zeros(lightness.shape[0], HINT_CHANNELS, *lightness.shape[2:])
        if hints.shape != (lightness.shape[0], HINT_CHANNELS, *lightness.shape[2:]):
            raise ValueError(f"hints must be (B, 3, H, W) like the lightness, got {tuple(hints.shape)}")
        return hints.to(lightness.dtype)

    def freeze_encoder(self, frozen: bool) -> None:
        """Freeze (no gradients, BatchNorm in eval mode even under ``train()``) or unfreeze the encoder."""
        self.encoder_frozen = frozen
        self.encoder.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> Generator:
        """Set the training mode; a frozen encoder stays in eval mode, frozen BatchNorm statistics too."""
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        elif self.batchnorm_frozen:
            for module in self.encoder.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    @property
    def input_conv(self) -> nn.Conv2d:
        """The encoder's first conv, which reads L (and the hints)."""
        return next(m for m in self.encoder.modules() if isinstance(m, nn.Conv2d))

    def param_groups(self, lr: float, encoder_lr_mult: float, hints_lr_mult: float = 1.0) -> list[dict]:
        """Optimizer groups: decoder at ``lr``, encoder at ``lr * encoder_lr_mult``, fusion conv at ``lr``, and for
        a model that takes hints, the first conv's weight (whose hint kernels start at zero) at ``lr`` and the hint
        pyramid at ``lr * hints_lr_mult``.

        A frozen encoder's parameters are included (they get no gradient, so Adam skips them), so the
        optimizer need not be rebuilt when the encoder is unfrozen. The fusion classifier, always
        frozen, is left out.
        """
        hint_input = [self.input_conv.weight] if self.takes_hints else []
        in_encoder = {id(p) for p in self.encoder.parameters()}
        encoder = [p for p in self.encoder.parameters() if not any(p is q for q in hint_input)]
        groups = [
            {"params": [p for p in self.unet.parameters() if id(p) not in in_encoder], "lr": lr, "name": "decoder"},
            {"params": encoder, "lr": lr * encoder_lr_mult, "name": "encoder"},
        ]
        if hint_input:
            groups.append({"params": hint_input, "lr": lr, "name": "hint_input"})
        if self.hint_pyramid is not None:
            pyramid = list(self.hint_pyramid.parameters())
            groups.append({"params": pyramid, "lr": lr * hints_lr_mult, "name": "hint_pyramid"})
        if self.fusion is not None:
            groups.append({"params": list(self.fusion.conv.parameters()), "lr": lr, "name": "fusion"})
        return groups

    def _fuse(self, encoder: nn.Module, args: tuple[Tensor, ...], features: Tensor) -> Tensor:
        """Forward hook on the encoder: its output is replaced by the fused one (the classifier sees L alone)."""
        return self.fusion(args[0][:, :1], features)


def build_generator(cfg: ModelConfig, size: int = 256, space: str = "lab") -> Generator:
    """Build the generator that ``cfg`` describes, in training mode.

    Args:
        cfg: encoder, pretrained weights, self-attention, blur, last_cross, spectral norm, fusion, chroma head.
        size: the square size the U-Net is laid out at, a multiple of 32; it then runs at any such size.
        space: the colour space whose chroma it predicts ("lab" or "luv"); a bins head quantizes it.

    Raises:
        ConfigError: an unknown fusion classifier, a bad size, or pretrained weights that cannot be loaded.
    """
    from fastai.callback.hook import num_features_model
    from fastai.layers import NormType
    from fastai.vision.models.unet import DynamicUnet

    check_size(size, f"generator size {size}")
    outputs, y_range, head = CHROMA_HEADS[cfg.chroma_head](cfg, space)
    body = build_encoder(cfg.encoder, cfg.pretrained, cfg.encoder_input, HINT_CHANNELS if cfg.hints else 0)
    fusion = build_fusion(cfg.fusion, cfg.pretrained, num_features_model(body))
    pyramid = build_hint_pyramid(body, size) if cfg.hints else None
    unet = DynamicUnet(
        body,
        n_out=outputs,
        img_size=(size, size),
        blur=cfg.blur,
        self_attention=cfg.self_attention,
        y_range=y_range,
        last_cross=cfg.last_cross,
        norm_type=NormType.Spectral if cfg.spectral_norm else None,
    )
    if pyramid is not None and len(pyramid.convs) != len(unet.sfs) + 1:
        raise RuntimeError(f"the hint pyramid reads {len(pyramid.convs)} stages, fastai's U-Net {len(unet.sfs)} + 1")
    _drop_tensor_base(unet)
    _parametrize_spectral_norm(unet)
    batchnorm_frozen = cfg.encoder_batchnorm == "frozen"
    return Generator(unet, fusion, head, batchnorm_frozen, pyramid).train()


def build_hint_pyramid(body: nn.Sequential, size: int) -> HintPyramid:
    """A :class:`HintPyramid` on the stages of ``body`` whose outputs the U-Net's decoder reads: the last stage at
    each resolution (fastai's skips) and the last stage."""
    from fastai.callback.hook import model_sizes
    from fastai.vision.models.unet import _get_sz_change_idxs

    sizes = model_sizes(body, (size, size))
    indices = sorted({*map(int, _get_sz_change_idxs(sizes)), len(body) - 1})
    return HintPyramid(
        [body[i] for i in indices], [sizes[i][1] for i in indices], [size // sizes[i][-1] for i in indices]
    )


def build_encoder(name: Encoder, pretrained: str, encoder_input: EncoderInput, extra: int = 0) -> nn.Sequential:
    """The body of encoder ``name`` with ``pretrained`` weights, reading lightness: a Sequential of stages.

    Args:
        name: a key of :data:`ENCODERS`.
        pretrained: "imagenet", "none" or the path of a state dict of the encoder's classifier.
        encoder_input: how the body reads the (B, 1, H, W) lightness (:data:`ENCODER_INPUTS`).
        extra: input channels after L (the hints), read through first-conv kernels that start at zero.

    Raises:
        ConfigError: pretrained weights that cannot be loaded.
    """
    spec = ENCODERS[name]
    body = spec.body(pretrained)
    read_lightness(body, encoder_input, spec.mean, spec.std, extra)
    return body


def _input_channels(body: nn.Module) -> int:
    """The channels ``body`` reads, as fastai's DynamicUnet counts them: its first 4-d weight's second dimension."""
    weights = (getattr(module, "weight", None) for module in body.modules())
    return next(weight.shape[1] for weight in weights if weight is not None and weight.ndim == 4)


def _check_lightness(lightness: Tensor) -> None:
    if lightness.dim() != 4 or lightness.shape[1] != 1:
        raise ValueError(f"lightness must be a (B, 1, H, W) tensor, got {tuple(lightness.shape)}")
    height, width = lightness.shape[-2:]
    if height % 32 or width % 32:
        (h_low, h_high), (w_low, w_high) = nearest_sizes(height), nearest_sizes(width)
        raise ValueError(
            f"lightness of shape {tuple(lightness.shape)}: H and W must be multiples of 32; "
            f"nearest valid H x W: {h_low}x{w_low} or {h_high}x{w_high}"
        )


def _drop_tensor_base(unet: nn.Module) -> None:
    """Remove DynamicUnet's last layer, which turns its output into a fastai TensorBase."""
    from fastai.layers import ToTensorBase

    unet.layers = nn.ModuleList(layer for layer in unet.layers if not isinstance(layer, ToTensorBase))


def _parametrize_spectral_norm(model: nn.Module) -> None:
    """Swap fastai's hook-based spectral norm for torch's parametrization, which can be deep-copied
    (as the EMA does) after a forward pass."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    for module in list(model.modules()):
        for hook in [h for h in module._forward_pre_hooks.values() if isinstance(h, SpectralNorm)]:
            nn.utils.remove_spectral_norm(module, hook.name)
            nn.utils.parametrizations.spectral_norm(module, hook.name, hook.n_power_iterations, hook.eps, hook.dim)
