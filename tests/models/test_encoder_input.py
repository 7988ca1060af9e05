"""model.encoder_input: the body sees a gray image exactly as the RGB classifier would; old checkpoints still load."""

import copy

import pytest
import torch
import torchvision
from torch import nn

from pix2color.color import rgb_to_lightness
from pix2color.config import ModelConfig, config_to_dict, load_config
from pix2color.errors import ConfigError
from pix2color.model_files import ModelFile, rebuild_generator
from pix2color.models.efficientnet_lite import load_lite_model
from pix2color.models.encoder_input import GrayImage, lightness_to_gray
from pix2color.models.generator import build_encoder, build_generator
from pix2color.training.stages import check_same_model


def _gray_rgb() -> torch.Tensor:
    """(2, 3, 64, 64) gray images (R = G = B) from black to almost white."""
    torch.manual_seed(0)
    gray = torch.rand(2, 1, 64, 64) * 0.999
    gray[0, 0, 0, :2] = torch.tensor([0.0, 0.999])
    return gray.expand(-1, 3, -1, -1)


def _torchvision_features(name: str, tmp_path) -> tuple[str, nn.Module, tuple, tuple]:
    """A state dict the test writes, the classifier's feature layers holding it, and torchvision's normalisation."""
    classifier = getattr(torchvision.models, name)()
    path = tmp_path / f"{name}.pth"
    torch.save(classifier.state_dict(), path)
    features = classifier.features if name == "vgg16_bn" else nn.Sequential(*list(classifier.children())[:-2])
    transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    return str(path), features, tuple(transforms.mean), tuple(transforms.std)


def _lite_features(name: str) -> tuple[str, nn.Module, tuple, tuple]:
    """The installed package's ImageNet weights, the classifier's feature layers, and timm's TF normalisation."""
    import timm

    model = load_lite_model(name, "imagenet")
    config = timm.get_pretrained_cfg(f"tf_{name}")
    return "imagenet", nn.Sequential(model.conv_stem, model.bn1, *model.blocks), config.mean, config.std


@pytest.mark.parametrize("name", ["resnet18", "vgg16_bn", "efficientnet_lite0"])
def test_the_body_on_lightness_equals_the_rgb_classifier_on_the_gray_image(name, tmp_path):
    if name.startswith("efficientnet"):
        pretrained, features, mean, std = _lite_features(name)
    else:
        pretrained, features, mean, std = _torchvision_features(name, tmp_path)
    body = build_encoder(name, pretrained, "rgb").eval()
    rgb = _gray_rgb()
    with torch.no_grad():
        expected = features.eval()((rgb - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1))
        got = body(rgb_to_lightness(rgb))
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * scale)


def test_lightness_to_gray_undoes_the_lightness_of_a_gray_pixel_exactly():
    rgb = _gray_rgb().double()
    torch.testing.assert_close(lightness_to_gray(rgb_to_lightness(rgb)), rgb[:, :1], rtol=0, atol=1e-12)
    white = torch.ones(1, 3, 1, 1)  # within 3.4e-6 of white pix2color.color's clamp costs at most that
    torch.testing.assert_close(lightness_to_gray(rgb_to_lightness(white)), white[:, :1], rtol=0, atol=3.4e-6)


def test_gray_image_is_the_gray_rgb_normalised_and_saves_nothing():
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    layer = GrayImage(tuple(mean.flatten().tolist()), tuple(std.flatten().tolist()))
    rgb = _gray_rgb()
    torch.testing.assert_close(layer(rgb_to_lightness(rgb)), (rgb - mean) / std)
    assert layer.state_dict() == {} and list(layer.parameters()) == []


def test_lightness_input_keeps_the_summed_kernel_layout_of_old_checkpoints():
    body = build_encoder("resnet18", "none", "lightness")
    assert isinstance(body[0], nn.Conv2d) and body[0].in_channels == 1
    new = build_encoder("resnet18", "none", "rgb")
    assert isinstance(new[0][0], GrayImage) and new[0][1].in_channels == 3


def test_a_stored_config_without_the_key_rebuilds_and_loads_the_old_layout():
    old = build_generator(ModelConfig(pretrained="none", encoder_input="lightness"), 64).eval()
    stored = config_to_dict(load_config())
    del stored["model"]["encoder_input"]
    generator, cfg = rebuild_generator(ModelFile(copy.deepcopy(old.state_dict()), stored, "generator", {}), "old.pt")
    assert cfg.model.encoder_input == "lightness"
    lightness = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(generator(lightness), old(lightness))


def test_stage2_from_an_old_stage1_names_the_encoder_input():
    ours = config_to_dict(load_config(None, ["model.encoder_input=rgb"]))
    theirs = copy.deepcopy(ours)
    del theirs["model"]["encoder_input"]
    with pytest.raises(ConfigError, match="trained with model.encoder_input='lightness', this run has 'rgb'"):
        check_same_model(ours, theirs, "stage1/best.pt")
