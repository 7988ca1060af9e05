"""The hint pyramid: hints pooled to each encoder stage's resolution, added through kernels that start at zero."""

import copy

import torch
from torch import nn

from pix2color.config import ModelConfig
from pix2color.models.generator import build_generator
from pix2color.models.hint_pyramid import HintPyramid, pool_hints

SIZE = 64


def _hints() -> torch.Tensor:
    """(1, 3, 8, 8): a 2x2 hint of chroma (0.5, -0.25) at the top-left, one pixel of (1, 1) at (5, 6)."""
    hints = torch.zeros(1, 3, 8, 8)
    hints[0, :, :2, :2] = torch.tensor([0.5, -0.25, 1.0])[:, None, None]
    hints[0, :, 5, 6] = torch.tensor([1.0, 1.0, 1.0])
    return hints


def test_pooled_cells_hold_the_mean_chroma_of_their_hinted_pixels_and_whether_they_have_any():
    pooled = pool_hints(_hints(), 4)
    expected = torch.zeros(1, 3, 2, 2)
    expected[0, :, 0, 0] = torch.tensor([0.5, -0.25, 1.0])  # 4 of 16 pixels hinted: their chroma, not a quarter
    expected[0, :, 1, 1] = torch.tensor([1.0, 1.0, 1.0])
    assert torch.allclose(pooled, expected)
    assert torch.equal(pool_hints(torch.zeros(2, 3, 8, 8), 2), torch.zeros(2, 3, 4, 4))


def test_a_stage_gets_its_conv_of_the_pooled_hints_only_while_hints_are_set():
    stage = nn.Identity()
    pyramid = HintPyramid([stage], [5], [4])
    features = torch.randn(1, 5, 2, 2)
    assert torch.equal(stage(features), features)  # no hints set
    pyramid.hints = _hints()
    assert torch.equal(stage(features), features)  # the kernels start at zero
    nn.init.normal_(pyramid.convs[0].weight)
    assert torch.allclose(stage(features), features + pyramid.convs[0](pool_hints(_hints(), 4)))


def test_a_hinted_generator_starts_out_ignoring_hints_and_carries_them_to_its_coarsest_features(random_pyramid):
    cfg = ModelConfig(encoder="efficientnet_lite0", pretrained="none", hints=True, last_cross=False)
    generator = build_generator(cfg, SIZE).eval()
    stored = {}
    generator.encoder.register_forward_hook(lambda module, args, output: stored.update(features=output))
    lightness, hints = torch.rand(1, 1, SIZE, SIZE) * 2 - 1, torch.zeros(1, 3, SIZE, SIZE)
    hints[0, :, 40:44, 8:12] = 0.5
    with torch.no_grad():  # without the last cross block, every kernel that reads hints starts at zero
        assert torch.equal(generator(lightness, hints=hints), generator(lightness))
    random_pyramid(generator)
    with torch.no_grad():
        hinted = generator(lightness, hints=hints)
        coarse = stored["features"]
        automatic = generator(lightness)
        automatic_coarse = stored["features"]
        clone = copy.deepcopy(generator)  # as the EMA does
        for conv in clone.hint_pyramid.convs:
            nn.init.zeros_(conv.weight)
        assert torch.equal(clone(lightness, hints=hints), automatic)  # the copy's hooks use the copy's kernels
        assert torch.equal(generator(lightness, hints=hints), hinted)
    assert coarse.shape[-1] == SIZE // 32 and not torch.allclose(automatic_coarse, coarse)
    assert not torch.allclose(hinted, automatic)
    assert generator.hint_pyramid.hints is None  # nothing kept after the pass
