"""scripts/compare.py: the grid's geometry and columns for color and B&W sets, captions, the HTML page."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color.data import ImageDataset
from pix2color.viz import CAPTION_HEIGHT, LABEL_HEIGHT, PADDING, gray_rgb

SIZE = 32


@pytest.fixture(scope="module")
def compare(load_script):
    return load_script("compare")


def _run(compare, checkpoints, images, out, *extra):
    args = ["--images", str(images), "--out", str(out), "--size", str(SIZE), "--workers", "0", *extra]
    for path in checkpoints:
        args += ["--checkpoint", str(path)]
    assert compare.main(args) == 0
    with Image.open(out) as image:
        return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def _tile(grid, row, col, caption_height):
    top = LABEL_HEIGHT + PADDING + row * (SIZE + caption_height + PADDING)
    left = PADDING + col * (SIZE + PADDING)
    return grid[:, top : top + SIZE, left : left + SIZE]


def test_color_set_grid_has_gray_checkpoints_and_truth_with_captions(compare, checkpoints, write_photos, tmp_path):
    photos = write_photos(tmp_path / "photos", 3)
    both = [checkpoints["random"], checkpoints["zero"]]
    grid = _run(compare, both, tmp_path / "photos", tmp_path / "grid.png", "--metrics", "--labels", "s1", "s2")

    rows, cols = 3, 4  # gray | s1 | s2 | truth
    assert grid.shape == (
        3,
        LABEL_HEIGHT + rows * (SIZE + CAPTION_HEIGHT + PADDING) + PADDING,
        cols * (SIZE + PADDING) + PADDING,
    )
    truth = torch.stack([ImageDataset(photos, SIZE, train=False)[i] for i in range(rows)])
    for row in range(rows):
        assert torch.equal(_tile(grid, row, 3, CAPTION_HEIGHT), truth[row])
        assert torch.equal(_tile(grid, row, 0, CAPTION_HEIGHT), gray_rgb(truth)[row])
        assert not torch.equal(_tile(grid, row, 1, CAPTION_HEIGHT), truth[row])


def test_bw_set_drops_the_truth_column(compare, checkpoints, write_photos, tmp_path, capsys):
    write_photos(tmp_path / "bw", 2, gray=True)
    grid = _run(compare, [checkpoints["zero"]], tmp_path / "bw", tmp_path / "bw.png")
    assert grid.shape == (3, LABEL_HEIGHT + 2 * (SIZE + PADDING) + PADDING, 2 * (SIZE + PADDING) + PADDING)
    assert "2 images x 2 columns (gray, tiny/gan/best)" in capsys.readouterr().out


def test_captions_give_psnr_against_the_truth_and_colorfulness(compare):
    truth = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    truth[:, 0] = 255  # pure red: rg = 255, yb = 127.5 everywhere, so CF = 0.3 * 127.5 * sqrt(5) = 85.5
    gray = torch.full_like(truth, 5)
    with_truth = compare.captions({"gray": gray, compare.TRUTH: truth})
    mse = (255 - 5) ** 2 / 3 + 2 * 5**2 / 3
    assert with_truth[0] == [f"PSNR {10 * np.log10(255**2 / mse):.1f} CF 0.0"] * 2
    assert with_truth[1] == ["CF 85.5"] * 2
    assert compare.captions({"gray": gray}) == [["CF 0.0", "CF 0.0"]]


def test_html_page_shows_full_size_images(compare, checkpoints, write_photos, tmp_path):
    write_photos(tmp_path / "photos", 2, size=(72, 40))
    _run(compare, [checkpoints["zero"]], tmp_path / "photos", tmp_path / "out" / "grid.png", "--html", "--limit", "1")
    page = (tmp_path / "out" / "grid.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert "<img src='grid.png'" in page and "<th>tiny/gan/best</th>" in page
    assert sources == [f"grid_files/000_photo0_{name}.png" for name in ("gray", "tiny_gan_best", "original")]
    for source in sources:
        with Image.open(tmp_path / "out" / source) as image:
            assert image.size == (72, 40)


def test_hints_add_a_column_with_the_hint_squares_outlined_after_each_model(
    compare, checkpoints, hinted_checkpoint, write_photos, tmp_path, capsys
):
    write_photos(tmp_path / "photos", 2)
    models = [hinted_checkpoint, checkpoints["zero"]]
    grid = _run(compare, models, tmp_path / "photos", tmp_path / "grid.png", "--hints", "5")
    printed = capsys.readouterr().out
    assert "(gray, hinted/best, hinted/best, 5 hints, tiny/gan/best, tiny/gan/best, 5 hints, ground truth)" in printed
    for row in range(2):
        for column in (1, 3):  # the model reading the hints, and a model without hints through the spread
            hinted, automatic = _tile(grid, row, column + 1, 0), _tile(grid, row, column, 0)
            white = (hinted == 255).all(dim=0)
            assert white.any() and not torch.equal(hinted, automatic)  # outlined squares; the hints changed it
    _run(compare, models, tmp_path / "photos", tmp_path / "alone.png", "--hints", "5", "--no-hint-spread")
    assert "5 columns (gray, hinted/best, hinted/best, 5 hints, tiny/gan/best, ground truth)" in capsys.readouterr().out


def test_a_hint_file_adds_a_column_with_the_placed_hints_mapped_into_the_centre_crop(
    compare, hinted_checkpoint, write_photos, tmp_path, capsys
):
    first, second = write_photos(tmp_path / "photos", 2, gray=True)  # 80x60: the crop is x 10..70, scaled to 32
    hint_file = tmp_path / "hints.json"
    middle, outside = {"x": 40, "y": 30, "color": "#c03020", "size": 6}, {"x": 2, "y": 30, "color": "#2030c0"}
    hint_file.write_text(f'{{"{first.name}": [{_json(middle)}, {_json(outside)}], "{second.name}": []}}')
    grid = _run(compare, [hinted_checkpoint], tmp_path / "photos", tmp_path / "grid.png", "--hint-file", str(hint_file))
    assert "3 columns (gray, hinted/best, hinted/best + placed hints)" in capsys.readouterr().out
    rings = [(_tile(grid, row, 2, 0) == 255).all(dim=0) for row in range(2)]
    rows, cols = torch.nonzero(rings[0], as_tuple=True)
    assert 12 <= cols.min() and cols.max() <= 19 and 12 <= rows.min() and rows.max() <= 19  # one ring, mid-crop
    assert not rings[1].any()  # no hints for the second photo


def test_crop_hints_maps_pixel_centres_and_leaves_out_what_the_crop_cuts(compare):
    from pix2color.hint_points import Hint

    hints = [Hint(10, 0, (1, 0, 0), 6), Hint(69, 59, (1, 0, 0)), Hint(9, 30, (1, 0, 0))]
    moved = compare.crop_hints(hints, 80, 60, 30)  # side 60 from x 10: half size
    assert [(h.x, h.y, h.size) for h in moved] == [(-0.25, -0.25, 3.0), (29.25, 29.25, 4.0)]


def _json(hint: dict) -> str:
    import json

    return json.dumps(hint)
