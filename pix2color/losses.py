"""Losses: L1 on chroma, class-rebalanced cross-entropy over chroma bins, a colorfulness gap, CIEDE2000, the GAN
objectives (vanilla, lsgan, hinge), a VGG16 perceptual loss."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from pix2color import color
from pix2color.config import GanLossName
from pix2color.metrics import opponent_colorfulness
from pix2color.models.chroma_bins import ChromaBins
from pix2color.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_torchvision_model

# torchvision vgg16 ``features`` index of each ReLU output the perceptual loss can compare.
VGG16_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}


def l1_chroma(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error between predicted and true chroma, both (B, 2, H, W)."""
    return F.l1_loss(pred, target)


class L1ChromaLoss(nn.Module):
    """Stage 1's loss for a regression head: :func:`l1_chroma` on (B, 2, H, W) chroma."""

    log_name = "loss_l1"

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return l1_chroma(pred, target)


class RebalancedBinsLoss(nn.Module):
    """Zhang et al.'s class-rebalanced cross-entropy between bin logits and the soft-encoded true chroma.

    Each pixel is weighted by how rare its nearest bin is in a prior counted over every batch seen so far
    (the ``counts`` buffer, kept in the checkpoint): w ∝ 1 / ((1 − mix)·p̃ + mix / Q), with p̃ the prior
    smoothed by a Gaussian of the soft encoding's width, normalised so that E_p̃[w] = 1.

    Args:
        bins: the bins the logits score (the generator head's).
        prior_mix: Zhang et al.'s lambda: 0.5 by default, 1 weighs every pixel alike.
    """

    log_name = "loss_bins"

    def __init__(self, bins: ChromaBins, prior_mix: float = 0.5):
        super().__init__()
        self.bins = bins
        self.prior_mix = prior_mix
        cells = bins.centers / bins.spacing  # (Q, 2) in cells
        smoothing = torch.exp(-torch.cdist(cells, cells).square() / (2 * bins.sigma**2))
        self.register_buffer("smoothing", smoothing / smoothing.sum(dim=0, keepdim=True), persistent=False)
        self.register_buffer("counts", torch.zeros(len(bins), dtype=torch.float64))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Args: logits (B, Q, H, W); target (B, 2, H, W) true chroma. Returns a scalar; counts the batch's bins."""
        index, weight = self.bins.soft_encode(target)
        nearest = index.gather(1, weight.argmax(dim=1, keepdim=True)).squeeze(1)  # (B, H, W)
        with torch.no_grad():
            counts = torch.bincount(nearest.flatten(), minlength=len(self.bins)).to(self.counts)
            if torch.distributed.is_initialized():
                torch.distributed.all_reduce(counts)  # under torchrun every rank weighs by the same prior
            self.counts += counts
        log_p = torch.log_softmax(logits.float(), dim=1)
        cross_entropy = -(log_p.gather(1, index) * weight).sum(dim=1)  # (B, H, W)
        return (self.class_weights()[nearest] * cross_entropy).mean()

    def class_weights(self) -> Tensor:
        """(Q,) float32 weight of each bin from the prior counted so far."""
        prior = self.smoothing.double() @ (self.counts / self.counts.sum().clamp_min(1))
        weights = 1 / ((1 - self.prior_mix) * prior + self.prior_mix / len(self.bins))
        return (weights / (prior * weights).sum()).float()


def colorfulness_gap(pred_rgb: Tensor, target_rgb: Tensor) -> Tensor:
    """Mean over the batch of |CF(pred) − CF(target)|, the metrics' colorfulness, differentiable in ``pred_rgb``.

    Unlike a term that rewards colorfulness without limit, it pulls each prediction to its truth's
    colorfulness: sepia gains colour, and nothing gains more than the photo had.

    Args:
        pred_rgb: (B, 3, H, W) float RGB in [0, 1].
        target_rgb: (B, 3, H, W) float RGB in [0, 1].

    Returns:
        A scalar in colorfulness units (0..255 scale).
    """
    with torch.no_grad():
        target = opponent_colorfulness(target_rgb.float() * 255)
    return (opponent_colorfulness(pred_rgb.float() * 255, eps=1e-6) - target).abs().mean()


def ciede2000_loss(pred_rgb: Tensor, target_rgb: Tensor) -> Tensor:
    """Mean CIEDE2000 difference between two RGB images, the metrics' ΔE2000, differentiable in ``pred_rgb``.

    Unlike L1 on chroma, it weighs a chroma error less the more colourful the pair (ΔE2000 divides it by
    1 + 0.045·C), so a vivid guess costs less than under L1 when the truth may be vivid too.

    Args:
        pred_rgb: (B, 3, H, W) float RGB in [0, 1].
        target_rgb: (B, 3, H, W) float RGB in [0, 1].

    Returns:
        A scalar in ΔE units.
    """
    with torch.no_grad():
        target_lab = color.rgb_to_lab(target_rgb)
    return color.delta_e2000(color.rgb_to_lab(pred_rgb), target_lab).mean()


class GanLoss(abc.ABC):
    """A GAN objective on discriminator logits of any shape, such as a PatchGAN map (B, 1, h, w).

    Args:
        real_label: D's target for real images; below 1 is one-sided label smoothing (Salimans et al.):
            the generator still aims at 1.
    """

    def __init__(self, real_label: float = 1.0):
        self.real_label = real_label

    @abc.abstractmethod
    def real(self, logits: Tensor, target: float = 1.0) -> Tensor:
        """The loss for calling ``logits`` real, with ``target`` as the real label."""

    @abc.abstractmethod
    def fake(self, logits: Tensor) -> Tensor:
        """The loss for calling ``logits`` fake."""

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The discriminator's loss, halved as in pix2pix so that D learns slower than G."""
        return 0.5 * (self.real(real_logits, self.real_label) + self.fake(fake_logits))

    def generator(self, fake_logits: Tensor) -> Tensor:
        """The generator's loss: its fakes should be called real."""
        return self.real(fake_logits)

    @abc.abstractmethod
    def score(self, logits: Tensor) -> Tensor:
        """How real D finds each input, in [0, 1]: 1 at this loss's real target, 0 at its fake one."""


class VanillaGanLoss(GanLoss):
    """Binary cross-entropy on logits (Goodfellow et al., the non-saturating generator loss)."""

    def real(self, logits: Tensor, target: float = 1.0) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def fake(self, logits: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))

    def score(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits)


class LsGanLoss(GanLoss):
    """Least squares (Mao et al.): real logits pulled to 1, fake ones to 0."""

    def real(self, logits: Tensor, target: float = 1.0) -> Tensor:
        return F.mse_loss(logits, torch.full_like(logits, target))

    def fake(self, logits: Tensor) -> Tensor:
        return F.mse_loss(logits, torch.zeros_like(logits))

    def score(self, logits: Tensor) -> Tensor:
        return logits.clamp(0, 1)


class HingeGanLoss(GanLoss):
    """Hinge (Lim & Ye; SAGAN): the discriminator's margins at +-1, the generator raises the fake logits."""

    def real(self, logits: Tensor, target: float = 1.0) -> Tensor:
        return F.relu(target - logits).mean()

    def fake(self, logits: Tensor) -> Tensor:
        return F.relu(1 + logits).mean()

    def generator(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.mean()

    def score(self, logits: Tensor) -> Tensor:
        return (logits.clamp(-1, 1) + 1) / 2


GAN_LOSSES: dict[GanLossName, type[GanLoss]] = {"vanilla": VanillaGanLoss, "lsgan": LsGanLoss, "hinge": HingeGanLoss}


def build_gan_loss(name: GanLossName, real_label: float = 1.0) -> GanLoss:
    """The GAN loss that ``stage2.gan_loss`` names, with D's real label ``stage2.real_label``."""
    return GAN_LOSSES[name](real_label)


class PerceptualLoss(nn.Module):
    """Mean L1 distance between frozen VGG16 features of two RGB images.

    Args:
        pretrained: "imagenet", "none" or the path of a torchvision vgg16 state dict, as ``model.pretrained``.
        layers: the ReLU outputs compared, keys of :data:`VGG16_LAYERS`; their losses are averaged.
    """

    def __init__(
        self, pretrained: str = "imagenet", layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    ):
        super().__init__()
        unknown = [name for name in layers if name not in VGG16_LAYERS]
        if unknown or not layers:
            raise ValueError(f"perceptual layers {list(layers)} are not valid; choose from {', '.join(VGG16_LAYERS)}")
        self.taps = {VGG16_LAYERS[name] for name in layers}
        vgg = load_torchvision_model(torchvision.models.vgg16, pretrained)
        self.features = vgg.features[: max(self.taps) + 1].requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, pred_rgb: Tensor, target_rgb: Tensor) -> Tensor:
        """Compare (B, 3, H, W) RGB images in [0, 1]; gradients flow into ``pred_rgb`` only. Returns a scalar."""
        with torch.no_grad():
            targets = self._tapped(target_rgb)
        pairs = zip(self._tapped(pred_rgb), targets, strict=True)
        return sum(F.l1_loss(pred, target) for pred, target in pairs) / len(targets)

    def _tapped(self, rgb: Tensor) -> list[Tensor]:
        """The VGG16 activations at ``self.taps``, shallowest first."""
        x = (rgb - self.mean) / self.std
        tapped = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                tapped.append(x)
        return tapped
