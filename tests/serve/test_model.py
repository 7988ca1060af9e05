"""The served model: one Colorizer for every request's settings, each photo with its own hints; what
``GET /v1/model`` reports."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pix2color.checkpoint import load_checkpoint, save_checkpoint
from pix2color.hint_points import Hint
from pix2color.inference import Colorizer
from pix2color.model_files import read_model_file
from pix2color.release import export_release
from pix2color.serve.model import Photo, ServedModel, Settings, checkpoint_info


def test_one_colorizer_serves_requests_at_different_settings(tiny_checkpoint):
    model = ServedModel.load(tiny_checkpoint, "cpu", None, max_batch=2)
    colorizer = model.colorizer
    photo = Image.radial_gradient("L").resize((72, 40))
    photos = [photo, photo.transpose(Image.Transpose.ROTATE_180)]
    for render_size, saturation in ((96, 1.5), (32, 0.5)):
        served = model.colorize(Settings(render_size, saturation), [Photo(photo) for photo in photos])
        built = Colorizer.from_checkpoint(tiny_checkpoint, "cpu", render_size, saturation, batch_size=2)
        expected = built.colorize_batch(photos)  # the same batch: oneDNN's sums may differ with the batch size
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(served, expected, strict=True))
    assert model.colorizer is colorizer
    assert (colorizer.render_size, colorizer.saturation, colorizer.batch_size) == (64, 1.0, 2)
    assert model.info["hints"] is True  # a model without hints takes them through the spread
    assert ServedModel.load(tiny_checkpoint, "cpu", 32, 1, with_hint_spread=False).info["hints"] is False


def test_each_photo_of_a_batch_keeps_its_own_hints(hinted_checkpoint):
    model = ServedModel.load(hinted_checkpoint, "cpu", None, max_batch=3)
    photos = [Image.radial_gradient("L").resize((72, 40)), Image.linear_gradient("L").resize((50, 60))]
    hints = [(Hint(10, 20, (0.8, 0.1, 0.1)),), (), (Hint(40, 30, (0.1, 0.2, 0.9), 12),)]
    photos.append(photos[0])
    served = model.colorize(Settings(64, 1.0), [Photo(p, h) for p, h in zip(photos, hints, strict=True)])
    expected = model.colorizer.colorize_batch(photos, hints=hints)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(served, expected, strict=True))
    assert not np.array_equal(np.asarray(served[0]), np.asarray(served[2]))  # one photo, two sets of hints
    assert model.info["hints"] is True


def test_a_release_folder_reports_what_its_checkpoint_does(tiny_checkpoint, tmp_path):
    state = load_checkpoint(tiny_checkpoint) | {"stage": "gan", "step": 321, "metrics": {"psnr": 23.5, "ssim": 0.95}}
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(state, checkpoint)
    release = export_release(checkpoint, tmp_path / "release")
    info = checkpoint_info(read_model_file(release))
    assert info == checkpoint_info(read_model_file(checkpoint))
    assert (info["stage"], info["step"], info["metrics"]) == ("gan", 321, {"psnr": 23.5, "ssim": 0.95})
