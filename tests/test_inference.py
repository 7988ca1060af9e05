"""Colorizer: photos of every kind keep their size, lightness, alpha and profile; memory is bounded."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import kornia.color
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms

from pix2color import inference
from pix2color.checkpoint import save_checkpoint
from pix2color.config import load_config
from pix2color.data import to_rgb
from pix2color.errors import CheckpointError, ConfigError
from pix2color.inference import Colorizer, upsample_rows
from pix2color.model_files import inference_checkpoint, load_generator
from pix2color.models.generator import build_generator
from pix2color.runtime import cpu_has_native_bf16

SIZE = 64


def edited(checkpoint, path, edit):
    """A copy of ``checkpoint`` at ``path`` with ``edit(state)`` applied."""
    state = torch.load(checkpoint, weights_only=True)
    edit(state)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def colorizer(tiny_checkpoint):
    return Colorizer.from_checkpoint(tiny_checkpoint, device="cpu")


def photo(width=80, height=56, seed=0):
    """A detailed colour RGB photo: smooth colour gradients plus per-pixel texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x / 7 + y / 5)], axis=-1) * 200 + 20
    texture = rng.integers(-20, 21, (height, width, 1))
    return Image.fromarray(np.clip(base + texture, 0, 255).astype(np.uint8))


def lightness(image):
    """Lab L (H, W) in 0..100 of a PIL image's colour channels."""
    rgb = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    return kornia.color.rgb_to_lab(rgb)[0, 0]


def chroma_magnitude(image):
    rgb = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    return kornia.color.rgb_to_lab(rgb)[0, 1:].norm(dim=0).mean().item()


def sepia(image):
    gray = np.array(image.convert("L"), dtype=np.float32)
    return Image.fromarray(np.clip(gray[..., None] * [1.07, 0.74, 0.43], 0, 255).astype(np.uint8))


def sixteen_bit(image):
    values = np.array(image.convert("L"), dtype=np.uint16) * 257
    return Image.fromarray(values)  # mode I;16


INPUTS = {
    "gray": lambda img: img.convert("L"),
    "sepia": sepia,
    "faded colour": lambda img: Image.blend(img, Image.new("RGB", img.size, (200, 190, 170)), 0.6),
    "colour": lambda img: img,
    "palette": lambda img: img.convert("P", palette=Image.Palette.ADAPTIVE),
    "16-bit": sixteen_bit,
    "CMYK": lambda img: img.convert("CMYK"),
}


@pytest.mark.parametrize("kind", INPUTS)
def test_output_keeps_size_and_lightness(colorizer, kind):
    image = INPUTS[kind](photo())
    out = colorizer.colorize(image)
    assert out.mode == "RGB"
    assert out.size == image.size
    assert (lightness(out) - lightness(to_rgb(image))).abs().max() < 1.0


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_alpha_is_kept(colorizer, mode):
    rgba = photo().convert("RGBA")
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha)
    image = rgba.convert(mode) if mode != "PA" else rgba.convert("P").convert("PA")
    out = colorizer.colorize(image)
    assert out.mode == "RGBA" and out.size == image.size
    assert np.array_equal(np.array(out.getchannel("A")), np.array(image.getchannel("A")))
    # the colours under the alpha are used as they are, not composited on a background
    assert (lightness(out) - lightness(image)).abs().max() < 1.0


def test_palette_transparency_becomes_alpha(colorizer):
    image = photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 3
    out = colorizer.colorize(image)
    assert out.mode == "RGBA"
    assert np.array_equal(np.array(out.getchannel("A")) == 0, np.array(image) == 3)


def test_large_photo_keeps_detail_beyond_the_render_size(colorizer):
    """Outputs carry the photo's own full-resolution L, not the render-size L upsampled."""
    image = photo(640, 480)
    out = colorizer.colorize(image)
    assert colorizer.render_size == SIZE
    assert out.size == (640, 480)
    assert (lightness(out) - lightness(image)).abs().max() < 1.0


def test_only_lightness_is_used(colorizer):
    image = photo()
    lab = kornia.color.rgb_to_lab(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255)
    lab[:, 1:] = 0
    gray_rgb = (kornia.color.lab_to_rgb(lab)[0] * 255).round().byte().permute(1, 2, 0).numpy()
    from_color = np.array(colorizer.colorize(image), dtype=np.int16)
    from_gray = np.array(colorizer.colorize(Image.fromarray(gray_rgb)), dtype=np.int16)
    assert np.abs(from_color - from_gray).mean() < 1.0


def test_saturation_scales_chroma(colorizer):
    image = photo()
    magnitudes = [
        chroma_magnitude(Colorizer(colorizer.generator, render_size=SIZE, saturation=s).colorize(image))
        for s in (0.0, 1.0, 2.0)
    ]
    assert magnitudes[0] < 1.0
    assert magnitudes[2] > 1.5 * magnitudes[1] > 1.5


@pytest.mark.parametrize(("render_size", "saturation"), [(96, 1.0), (32, 2.5), (SIZE, 0.0)])
def test_per_call_settings_color_as_a_colorizer_built_with_them(colorizer, render_size, saturation):
    built = Colorizer(colorizer.generator, render_size=render_size, saturation=saturation)
    image = photo()
    settings = {"render_size": render_size, "saturation": saturation}
    assert np.array_equal(np.array(colorizer.colorize(image, **settings)), np.array(built.colorize(image)))
    rgb = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]
    assert torch.equal(colorizer.predict_rgb(rgb, **settings), built.predict_rgb(rgb))
    assert (colorizer.render_size, colorizer.saturation) == (SIZE, 1.0)  # the defaults stay as built


def test_bad_per_call_settings_are_one_clear_error(colorizer):
    with pytest.raises(ConfigError, match="render size 100 must be a positive multiple of 32"):
        colorizer.colorize(photo(), render_size=100)
    with pytest.raises(ConfigError, match="saturation -1 must be 0 or more"):
        colorizer.predict_rgb(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), saturation=-1)


def test_icc_profile_kept_only_when_rgb(colorizer):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = srgb[:16] + b"CMYK" + srgb[20:]
    image = photo()
    image.info["icc_profile"] = srgb
    assert colorizer.colorize(image).info["icc_profile"] == srgb
    image.info["icc_profile"] = cmyk
    assert "icc_profile" not in colorizer.colorize(image).info


def test_batch_of_mixed_sizes_matches_one_by_one(colorizer):
    images = [photo(80, 56), photo(33, 70, seed=1).convert("L"), photo(128, 96, seed=2)]
    assert colorizer.colorize_batch([]) == []
    batch = colorizer.colorize_batch(images)
    assert [out.size for out in batch] == [image.size for image in images]
    for image, out in zip(images, batch, strict=True):
        single = np.array(colorizer.colorize(image), dtype=np.int16)
        assert np.abs(single - np.array(out, dtype=np.int16)).max() <= 2


def test_predict_rgb_matches_colorize(colorizer):
    images = [photo(96, 64, seed=seed) for seed in range(3)]
    rgb = torch.stack([torch.from_numpy(np.array(image)).permute(2, 0, 1) for image in images])
    pred = colorizer.predict_rgb(rgb)
    assert pred.shape == rgb.shape and pred.dtype == torch.uint8
    for image, one in zip(images, pred, strict=True):
        expected = torch.from_numpy(np.array(colorizer.colorize(image))).permute(2, 0, 1)
        assert (one.short() - expected.short()).abs().max() <= 2


def test_strip_seams_are_invisible(colorizer, monkeypatch):
    image = photo(90, 70)
    whole = np.array(colorizer.colorize(image))
    monkeypatch.setattr(inference, "STRIP_PIXELS", 500)  # strips of 5 rows
    assert np.array_equal(np.array(colorizer.colorize(image)), whole)


def test_upsample_rows_matches_interpolate():
    chroma = torch.randn(2, 2, 7, 9)
    full = F.interpolate(chroma, (50, 33), mode="bilinear", align_corners=False)
    rows = [upsample_rows(chroma, (50, 33), slice(top, min(top + 13, 50))) for top in range(0, 50, 13)]
    torch.testing.assert_close(torch.cat(rows, dim=2), full, atol=1e-5, rtol=0)


def test_render_size_defaults_to_training_size_and_must_be_a_multiple_of_32(colorizer):
    assert colorizer.render_size == SIZE
    assert Colorizer(colorizer.generator, render_size=96).colorize(photo()).size == (80, 56)
    with pytest.raises(ConfigError, match="render size 300 .* 288, 320"):
        Colorizer(colorizer.generator, render_size=300)


@pytest.mark.parametrize("stage", ["pretrain", "gan"])
def test_both_stages_load(tmp_path, tiny_checkpoint, stage):
    path = edited(tiny_checkpoint, tmp_path / "c.pt", lambda state: state.update(stage=stage))
    assert Colorizer.from_checkpoint(path, "cpu").colorize(photo()).size == (80, 56)


def test_ema_weights_are_used_when_present(tmp_path, tiny_checkpoint, colorizer):
    def add_ema(state):
        state["generator_ema"] = {k: v + 0.25 if v.is_floating_point() else v for k, v in state["generator"].items()}

    ema = Colorizer.from_checkpoint(edited(tiny_checkpoint, tmp_path / "ema.pt", add_ema), "cpu")
    name, weight = next((k, v) for k, v in colorizer.generator.state_dict().items() if v.is_floating_point())
    torch.testing.assert_close(ema.generator.state_dict()[name], weight + 0.25)
    assert not np.array_equal(np.array(ema.colorize(photo())), np.array(colorizer.colorize(photo())))


def test_never_downloads_pretrained_weights(tmp_path, monkeypatch):
    """A real run's config says pretrained=imagenet and may fuse a classifier: all weights come from the file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    cfg = load_config(None, ["model.pretrained=none", f"data.size={SIZE}", "model.fusion=resnet50"])
    weights = build_generator(cfg.model, SIZE).state_dict()
    cfg.model.pretrained = "imagenet"
    path = tmp_path / "fusion.pt"
    save_checkpoint(inference_checkpoint(cfg, weights, "gan"), path)
    colorizer = Colorizer.from_checkpoint(path, "cpu")
    for name, value in colorizer.generator.state_dict().items():
        assert torch.equal(value, weights[name]), name
    assert colorizer.colorize(photo()).size == (80, 56)


def test_bad_checkpoints_give_one_clear_line(tmp_path, tiny_checkpoint):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    # the default U-Net's weights under the config of one without the last cross block
    no_cross = lambda state: state["config"]["model"].update(last_cross=False)  # noqa: E731
    wrong = edited(tiny_checkpoint, tmp_path / "wrong.pt", no_cross)
    for path, reason in [(tmp_path / "missing.pt", "does not exist"), (truncated, "truncated"), (wrong, "do not fit")]:
        with pytest.raises(CheckpointError, match=reason) as info:
            Colorizer.from_checkpoint(path, "cpu")
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_large_photo_memory_is_bounded_by_the_render_size():
    """A 12-megapixel photo adds far less than whole-photo float images would (>1 GB at 12 MP).

    Measured in a fresh process: its peak RSS after colorizing minus its RSS before. The peak is
    VmHWM, not ru_maxrss, which also counts the RSS of the pytest process that forked it. A one-conv
    stand-in generator keeps fastai out of the process; the full-resolution work is the same.
    """
    script = textwrap.dedent(
        """
        from pathlib import Path
        from PIL import Image
        from torch import nn
        from pix2color.inference import Colorizer

        def status_mb(field):
            line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field))
            return int(line.split()[1]) / 1024

        colorizer = Colorizer(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh()), render_size=64)
        colorizer.colorize(Image.new("L", (64, 64)))
        image = Image.radial_gradient("L").resize((4000, 3000))
        before = status_mb("VmRSS:")
        assert colorizer.colorize(image).size == (4000, 3000)
        print(status_mb("VmHWM:") - before)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    added_mb = float(result.stdout.split()[-1])
    assert added_mb < 500, added_mb


def test_onnxruntime_backend_colors_like_the_torch_backend_at_the_same_precision(tiny_checkpoint):
    """ONNX Runtime runs fp32, so the torch side is pinned to fp32 too: then the two differ only in the order of
    float sums (chroma within 1e-4) and so by at most a rounding tie (1 level) on any CPU."""
    from pix2color.onnx_runtime import OnnxGenerator

    fast = Colorizer.from_checkpoint(tiny_checkpoint, backend="onnxruntime")
    assert isinstance(fast.generator, OnnxGenerator) and fast.device.type == "cpu"  # "auto": the CPU
    plain = Colorizer.from_checkpoint(tiny_checkpoint, device="cpu", precision="fp32")
    rgb = torch.from_numpy(np.array(photo())).permute(2, 0, 1)[None]
    lightness = plain.render_lightness(rgb)
    torch.testing.assert_close(fast.predict_chroma(lightness), plain.predict_chroma(lightness), atol=1e-4, rtol=0)
    assert (fast.predict_rgb(rgb).int() - plain.predict_rgb(rgb).int()).abs().max() <= 1


def test_precision_auto_is_the_runtime_autocast_choice_fp32_turns_it_off_and_bf16_fp16_force_it(tiny_checkpoint):
    generator, _ = load_generator(tiny_checkpoint)
    assert Colorizer(generator, precision="auto").amp == (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert Colorizer(generator, precision="fp32").amp is None
    assert Colorizer(generator, precision="bf16").amp == torch.bfloat16
    assert Colorizer(generator, precision="fp16").amp == torch.float16
    with pytest.raises(ConfigError, match="precision 'int8' is not valid; valid precisions: auto, fp32, bf16, fp16"):
        Colorizer(generator, precision="int8")


def test_channels_last_is_an_option_that_keeps_the_colors(colorizer):
    plain, fast = (
        Colorizer(copy.deepcopy(colorizer.generator), render_size=SIZE, precision="fp32", channels_last=flag)
        for flag in (False, True)
    )
    weight = next(p for p in plain.generator.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert weight.is_contiguous() and not weight.is_contiguous(memory_format=torch.channels_last)
    rgb = torch.from_numpy(np.array(photo())).permute(2, 0, 1)[None]
    assert (plain.predict_rgb(rgb).int() - fast.predict_rgb(rgb).int()).abs().max() <= 1


def test_a_bad_backend_or_a_gpu_for_onnxruntime_is_one_clear_error(tiny_checkpoint, monkeypatch):
    with pytest.raises(ConfigError, match="backend 'tensorrt' is not valid; valid backends: torch, onnxruntime"):
        Colorizer.from_checkpoint(tiny_checkpoint, device="cuda", backend="tensorrt")  # named before the device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    with pytest.raises(ConfigError, match="onnxruntime backend runs on the CPU; ask for device cpu, not cuda"):
        Colorizer.from_checkpoint(tiny_checkpoint, device="cuda", backend="onnxruntime")
