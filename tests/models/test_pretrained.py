"""Pretrained weights reach the encoder: a state dict path, ImageNet from $TORCH_HOME offline, and errors."""

import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from pix2color.config import ModelConfig
from pix2color.errors import ConfigError
from pix2color.models.encoder_input import summed_kernels_input
from pix2color.models.generator import build_encoder, build_generator
from pix2color.models.pretrained import hub_file


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty $TORCH_HOME, and any download fails as it does without a network."""

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"no network for {url}")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.resnet18().state_dict()


def _assert_encoder_carries(encoder: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """The body holds ``state`` minus the classifier head, its RGB first conv unchanged."""
    body = encoder.state_dict()
    assert len(body) == len(state) - 2  # fc.weight, fc.bias
    for (key, value), (ref_key, ref) in zip(body.items(), state.items(), strict=False):
        assert key.endswith(ref_key.split(".", 1)[1])  # "4.0.conv1.weight" holds "layer1.0.conv1.weight"
        assert torch.equal(value, ref), key


def test_a_state_dict_path_loads_into_the_encoder(tmp_path, offline, resnet18_state):
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)
    generator = build_generator(ModelConfig(encoder="resnet18", pretrained=str(path), encoder_input="rgb"), 64)
    _assert_encoder_carries(generator.encoder, resnet18_state)


def test_the_default_lightness_input_sums_the_state_dicts_rgb_kernels(tmp_path, resnet18_state):
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)
    generator = build_generator(ModelConfig(encoder="resnet18", pretrained=str(path)), 64)
    assert torch.equal(generator.encoder[0].weight, resnet18_state["conv1.weight"].sum(dim=1, keepdim=True))


def test_imagenet_reads_the_torch_hub_checkpoints_folder_offline(offline, resnet18_state):
    file = hub_file(torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    assert file == offline / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    file.parent.mkdir(parents=True)
    torch.save(resnet18_state, file)
    _assert_encoder_carries(build_encoder("resnet18", "imagenet", "rgb"), resnet18_state)


def test_imagenet_offline_without_the_file_names_the_file_and_folder(offline):
    folder = offline / "torch" / "hub" / "checkpoints"
    with pytest.raises(ConfigError) as error:
        build_encoder("resnet18", "imagenet", "rgb")
    message = str(error.value)
    assert f"needs resnet18-f37072fd.pth in {folder}" in message
    assert "--set model.pretrained=none" in message


def test_a_missing_unreadable_or_mismatching_file_is_named(tmp_path, resnet18_state):
    with pytest.raises(ConfigError, match="no such file"):
        build_encoder("resnet18", str(tmp_path / "missing.pth"), "rgb")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a state dict")
    with pytest.raises(ConfigError, match=f"{garbage}: cannot be read"):
        build_encoder("resnet18", str(garbage), "rgb")
    wrong = tmp_path / "wrong.pth"
    torch.save({**resnet18_state, "fc.weight": torch.zeros(10, 512)}, wrong)
    with pytest.raises(ConfigError, match=r"'fc.weight' has shape \(10, 512\) instead of \(1000, 512\)"):
        build_encoder("resnet18", str(wrong), "rgb")
    nested = tmp_path / "checkpoint.pth"
    torch.save({"model": resnet18_state}, nested)
    with pytest.raises(ConfigError, match=f"{nested} is not a torchvision resnet18 state dict .*lacks 'conv1.weight'"):
        build_encoder("resnet18", str(nested), "rgb")


def test_summed_kernels_read_one_channel_as_the_rgb_kernels_read_gray():
    rgb_conv = nn.Conv2d(3, 4, 3, padding=1)
    conv = summed_kernels_input(rgb_conv, (0.5,) * 3, (0.5,) * 3)
    assert conv.in_channels == 1
    assert torch.equal(conv.weight, rgb_conv.weight.sum(dim=1, keepdim=True))
    assert torch.equal(conv.bias, rgb_conv.bias)
    gray = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(conv(gray), rgb_conv(gray.expand(-1, 3, -1, -1)))


def test_vgg_body_is_its_features_reading_one_channel():
    body = build_encoder("vgg16_bn", "none", "lightness")
    assert isinstance(body[0], nn.Conv2d) and body[0].in_channels == 1 and body[0].bias is not None
    assert sum(isinstance(m, nn.MaxPool2d) for m in body) == 5
