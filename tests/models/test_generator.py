"""The U-Net generator on CPU at 64x64: every encoder and option builds, runs and trains; freezing works."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pix2color.config import ModelConfig
from pix2color.errors import ConfigError
from pix2color.hints import HINT_CHANNELS
from pix2color.models.generator import ENCODERS, build_encoder, build_generator

SIZE = 64


def _build(**options) -> nn.Module:
    return build_generator(ModelConfig(pretrained="none", **options), SIZE)


def _seeded_encoder(encoder: str, encoder_input: str, extra: int) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_encoder(encoder, "none", encoder_input, extra)


def _lightness(height: int = SIZE, width: int = SIZE) -> torch.Tensor:
    return torch.rand(2, 1, height, width) * 2 - 1


def _no_grad_names(module: nn.Module) -> list[str]:
    return [name for name, p in module.named_parameters() if p.requires_grad and p.grad is None]


def _ids(parameters: list[torch.Tensor]) -> list[int]:
    return [id(p) for p in parameters]


def _forward_flops(generator: nn.Module) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        generator.eval()(_lightness())
    return counter.get_total_flops()


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    """A shared generator for the tests that only run it."""
    return _build()


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_every_encoder_runs_forward_and_backward(encoder):
    generator = _build(encoder=encoder)
    # Built for 64x64, run at 96x96: a 2x2 bottleneck makes oneDNN's conv backward ~10x slower on CPU.
    chroma = generator(torch.rand(1, 1, 96, 96) * 2 - 1)
    assert chroma.shape == (1, 2, 96, 96)
    chroma.mean().backward()
    assert _no_grad_names(generator) == []


@pytest.mark.parametrize("encoder", list(ENCODERS))
@pytest.mark.parametrize("encoder_input", ["lightness", "rgb"])
def test_hints_reach_the_encoder_through_kernels_that_start_at_zero(encoder, encoder_input):
    """Built from the same seed, the hinted encoder computes on L and any hints what the plain one does on L."""
    plain, hinted = (_seeded_encoder(encoder, encoder_input, extra).eval() for extra in (0, HINT_CHANNELS))
    lightness = _lightness()
    hints = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(hinted(torch.cat([lightness, hints], 1)), plain(lightness), atol=1e-5)


@pytest.mark.parametrize(("chroma_head", "space"), [("regression", "lab"), ("bins", "luv")])
def test_a_hinted_generator_trains_its_hint_kernels_and_takes_no_hints_as_zeros(chroma_head, space):
    generator = build_generator(ModelConfig(pretrained="none", hints=True, chroma_head=chroma_head), SIZE, space)
    lightness, hints = _lightness(), torch.zeros(2, 3, SIZE, SIZE)
    hints[:, :2, 20:26, 20:26], hints[:, 2, 20:26, 20:26] = 0.5, 1.0
    generator.eval()
    with torch.no_grad():
        assert torch.equal(generator(lightness), generator(lightness, hints=torch.zeros(2, 3, SIZE, SIZE)))
    generator.train()
    chroma = generator(lightness, hints=hints)
    assert chroma.shape == (2, 2, SIZE, SIZE)
    chroma.mean().backward()
    assert _no_grad_names(generator) == []
    with pytest.raises(ValueError, match="hints must be"):
        generator(lightness, hints=hints[:, :2])
    groups = generator.param_groups(1e-3, 0.1, 10.0)  # the new hint kernels learn at the decoder's rate or above
    assert [(g["name"], g["lr"]) for g in groups][1:] == [
        ("encoder", pytest.approx(1e-4)),
        ("hint_input", 1e-3),
        ("hint_pyramid", pytest.approx(1e-2)),
    ]
    assert _ids(groups[2]["params"]) == [id(generator.input_conv.weight)] and generator.input_conv.weight.shape[1] == 4
    assert len(groups[3]["params"]) == 10  # a 1x1 conv's weight and bias per pyramid stage, resnet18's five
    assert sum(len(g["params"]) for g in groups) == len(list(generator.parameters()))


def test_a_generator_without_hints_refuses_them(resnet18):
    with pytest.raises(ValueError, match="built without model.hints"):
        resnet18(_lightness(), hints=torch.zeros(2, 3, SIZE, SIZE))


def test_output_is_plain_chroma_in_range_at_any_multiple_of_32(resnet18):
    with torch.no_grad():
        chroma = resnet18(_lightness(96, 64))
    assert type(chroma) is torch.Tensor
    assert chroma.shape == (2, 2, 96, 64)
    assert chroma.abs().max() <= 1


def test_options_train_and_deep_copy_after_a_forward():
    generator = _build(self_attention=True, blur=True, spectral_norm=True, last_cross=False)
    generator(_lightness()).mean().backward()
    assert _no_grad_names(generator) == []
    clone = copy.deepcopy(generator)  # as the EMA does
    generator.eval(), clone.eval()
    lightness = _lightness()
    with torch.no_grad():
        assert torch.equal(clone(lightness), generator(lightness))
    parametrized = [m for m in generator.unet.modules() if hasattr(m, "parametrizations")]
    assert len(parametrized) > 10  # spectral norm on the decoder's convs


def test_frozen_encoder_gets_no_gradient_and_keeps_batchnorm_in_eval():
    generator = _build()
    generator.freeze_encoder(True)
    generator.train()
    norms = [m for m in generator.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    before = norms[0].running_mean.clone()
    generator(_lightness()).mean().backward()
    assert torch.equal(norms[0].running_mean, before)
    assert all(p.grad is None and not p.requires_grad for p in generator.encoder.parameters())
    assert _no_grad_names(generator) == []

    generator.zero_grad(set_to_none=True)
    generator.freeze_encoder(False)
    assert all(m.training for m in norms)
    generator(_lightness()).mean().backward()
    assert all(p.grad is not None for p in generator.parameters())


def test_frozen_batchnorm_keeps_the_encoders_statistics_while_its_weights_train():
    generator = _build(encoder_batchnorm="frozen").train()
    norms = [m for m in generator.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_norms = [m for m in generator.unet[1:].modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and all(m.training for m in decoder_norms)
    before = [m.running_mean.clone() for m in norms]
    generator(_lightness()).mean().backward()
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before, strict=True))
    assert all(p.grad is not None for p in generator.encoder.parameters())
    generator.freeze_encoder(True)
    generator.freeze_encoder(False)  # unfreezing the encoder leaves its statistics frozen
    assert not any(m.training for m in norms)


def test_unfreezing_in_eval_mode_stays_in_eval_mode():
    generator = _build().eval()
    generator.freeze_encoder(True)
    generator.freeze_encoder(False)
    assert not any(m.training for m in generator.modules())


def test_param_groups_give_the_encoder_its_own_lr_and_cover_every_parameter_once():
    generator = _build()
    generator.freeze_encoder(True)  # frozen parameters stay in the groups
    groups = generator.param_groups(1e-3, 0.1)
    assert [g["name"] for g in groups] == ["decoder", "encoder"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-4])
    ids = [id(p) for group in groups for p in group["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in generator.parameters()}
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in generator.encoder.parameters()}
    torch.optim.Adam(groups)


def test_last_cross_false_costs_fewer_flops(resnet18):
    assert _forward_flops(_build(last_cross=False)) < _forward_flops(resnet18)


def test_a_build_size_off_the_multiples_of_32_names_the_nearest():
    with pytest.raises(ConfigError, match=r"size 100 .* nearest valid sizes: 96, 128"):
        build_generator(ModelConfig(pretrained="none"), 100)


def test_an_input_off_the_multiples_of_32_names_the_nearest(resnet18):
    with pytest.raises(ValueError, match=r"nearest valid H x W: 96x64 or 128x64"):
        resnet18(torch.zeros(1, 1, 100, 64))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        resnet18(torch.zeros(1, 3, 64, 64))
