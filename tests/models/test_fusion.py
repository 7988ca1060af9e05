"""Global fusion: shapes, gradients into the fusion conv and decoder, none into the frozen classifier."""

import copy

import pytest
import torch

from pix2color.config import ModelConfig
from pix2color.errors import ConfigError
from pix2color.models.fusion import CLASSIFIERS
from pix2color.models.generator import build_generator


def _build(fusion: str):
    return build_generator(ModelConfig(encoder="resnet18", pretrained="none", fusion=fusion), 64)


@pytest.fixture(scope="module")
def fused():
    return _build("resnet50")


def test_fusion_trains_the_conv_and_decoder_but_not_the_classifier(fused):
    generator = fused
    classifier = generator.fusion.classifier
    assert not classifier.training
    chroma = generator(torch.rand(2, 1, 64, 64) * 2 - 1)
    assert chroma.shape == (2, 2, 64, 64)
    chroma.mean().backward()

    assert all(p.grad is None and not p.requires_grad for p in classifier.parameters())
    assert all(p.grad is not None for p in generator.unet.parameters())
    channels = generator.fusion.conv.out_channels
    assert generator.fusion.conv.weight.grad[:, channels:].abs().sum() > 0  # the embedding is fused

    groups = generator.param_groups(1e-3, 0.1)
    assert [g["name"] for g in groups] == ["decoder", "encoder", "fusion"]
    grouped = {id(p) for g in groups for p in g["params"]}
    assert grouped == {id(p) for p in generator.parameters() if p.requires_grad}


def test_the_classifier_stays_in_eval_mode_and_a_copy_fuses_with_its_own_module(fused):
    generator = fused.train()
    assert not generator.fusion.classifier.training
    clone = copy.deepcopy(generator)
    (hook,) = clone.encoder._forward_hooks.values()
    assert hook.__self__ is clone


def test_inception_v3_embeds_at_its_own_input_size():
    generator = _build("inception_v3").eval()
    with torch.no_grad():
        assert generator(torch.zeros(1, 1, 64, 64)).shape == (1, 2, 64, 64)
    assert generator.fusion.embed(torch.zeros(1, 1, 64, 64)).shape == (1, 2048)


def test_an_unknown_fusion_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="model.fusion='alexnet9'") as error:
        _build("alexnet9")
    assert all(name in str(error.value) for name in ["none", *CLASSIFIERS])


def test_inception_resnet_v2_fusion_trains_and_its_embedding_changes_the_output():
    """timm's InceptionResNetV2 (the ``fusion`` extra; random init, nothing downloaded) fused at the bottleneck.

    A few Adam steps train it and move the fusion conv's embedding weights off their zero start. A randomly
    initialised classifier embeds every photo almost alike and those weights are still tiny after a few
    steps, so the wiring is checked with them set to random values: then the global embedding (its own
    against none) must change the predicted chroma.
    """
    pytest.importorskip("timm", reason="needs the fusion extra: pip install -e '.[fusion]'")
    torch.manual_seed(0)
    generator = _build("inception_resnet_v2").train()
    assert generator.fusion.input_size == (299, 299)
    channels = generator.fusion.conv.out_channels
    optimizer = torch.optim.Adam(generator.param_groups(1e-3, 0.1))
    lightness, target = torch.rand(2, 1, 64, 64) * 2 - 1, torch.rand(2, 2, 64, 64) * 2 - 1
    for _ in range(3):
        loss = (generator(lightness) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
    embedding_weights = generator.fusion.conv.weight[:, channels:]
    assert embedding_weights.abs().amax() > 0  # trained: they started at zero
    generator.eval()
    with torch.no_grad():
        embedding_weights.normal_(std=0.05)
        fused = generator(lightness)
        own = generator.fusion.embed(lightness)
        generator.fusion.embed = lambda _: torch.zeros_like(own)
        unfused = generator(lightness)
    assert (fused - unfused).abs().amax() > 1e-5  # unwired it is exactly 0; float noise here is about 1e-7


def test_a_fused_generator_takes_hints_and_its_classifier_sees_lightness_alone():
    generator = build_generator(
        ModelConfig(encoder="resnet18", pretrained="none", fusion="resnet50", hints=True), 64
    ).eval()
    seen = []
    generator.fusion.classifier.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    lightness, hints = torch.rand(2, 1, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert generator(lightness, hints=hints).shape == (2, 2, 64, 64)
    assert seen and seen[0][1] == 3  # the gray image in RGB, from L, not the hint channels
