"""The conditional PatchGAN: map sizes, norms, gradients, errors."""

import copy

import pytest
import torch
from torch import nn

from pix2color.config import DiscriminatorConfig
from pix2color.models.discriminator import NORMS, build_discriminator


def _pair(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(1, 1, size, size) * 2 - 1, torch.rand(1, 2, size, size) * 2 - 1


@pytest.mark.parametrize("norm", list(NORMS))
def test_256_gives_a_30x30_map_with_three_layers_and_every_weight_learns(norm):
    disc = build_discriminator(DiscriminatorConfig(n_layers=3, ndf=16, norm=norm))
    logits = disc(*_pair(256))
    assert logits.shape == (1, 1, 30, 30)
    logits.mean().backward()
    assert all(p.grad is not None for p in disc.parameters())


@pytest.mark.parametrize(("n_layers", "side"), [(1, 62), (2, 30), (4, 6)])
def test_map_size_follows_n_layers(n_layers, side):
    disc = build_discriminator(DiscriminatorConfig(n_layers=n_layers, ndf=8))
    assert disc(*_pair(128)).shape == (1, 1, side, side)


def test_the_default_width_matches_pix2pix():
    convs = [m for m in build_discriminator(DiscriminatorConfig()).modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (3, 64, 2),
        (64, 128, 2),
        (128, 256, 2),
        (256, 512, 1),
        (512, 1, 1),
    ]


def test_spectral_norm_wraps_every_conv_and_deep_copies_after_a_forward():
    disc = build_discriminator(DiscriminatorConfig(ndf=8, norm="spectral"))
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert all(hasattr(c, "parametrizations") for c in convs)
    disc(*_pair(64)).mean().backward()
    clone = copy.deepcopy(disc)
    pair = _pair(64)
    assert torch.equal(clone.eval()(*pair), disc.eval()(*pair))


def test_a_discriminator_with_hints_reads_them_beside_l_and_the_chroma():
    torch.manual_seed(0)
    disc = build_discriminator(DiscriminatorConfig(ndf=8, hints=True))
    assert next(m for m in disc.modules() if isinstance(m, nn.Conv2d)).in_channels == 6
    lightness, chroma = _pair(64)
    hints = torch.zeros(1, 3, 64, 64)
    hinted = hints.clone()
    hinted[:, :, 20:26, 20:26] = 0.5
    assert not torch.allclose(disc(lightness, chroma, hints), disc(lightness, chroma, hinted))
    with pytest.raises(ValueError, match="built with disc.hints; give it hints exactly when"):
        disc(lightness, chroma)
    with pytest.raises(ValueError, match="built without disc.hints"):
        build_discriminator(DiscriminatorConfig(ndf=8))(lightness, chroma, hints)
