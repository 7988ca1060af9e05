"""Comparison grids checked on their pixels: geometry, tile placement, labels, captions, the PNG."""

import numpy as np
import pytest
import torch
from PIL import Image

from pix2color import metrics, viz
from pix2color.color import L_SCALE, rgb_to_lightness
from pix2color.viz import CAPTION_HEIGHT, LABEL_HEIGHT, PADDING

ROWS, H, W = 2, 20, 48


def _columns(count, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (ROWS, 3, H, W), dtype=torch.uint8, generator=gen) for _ in range(count)]


def _tile(grid, row, col, caption_height=0):
    top = LABEL_HEIGHT + PADDING + row * (H + caption_height + PADDING)
    left = PADDING + col * (W + PADDING)
    return grid[:, top : top + H, left : left + W]


def _dark(region):
    return (region.int().sum(dim=0) < 3 * 100).sum().item()


def test_grid_geometry_and_tile_placement():
    columns = _columns(3)
    grid = viz.comparison_grid(columns, ["gray", "stage 1", "truth"])
    assert grid.dtype == torch.uint8
    assert grid.shape == (3, LABEL_HEIGHT + ROWS * (H + PADDING) + PADDING, 3 * (W + PADDING) + PADDING)
    for col, images in enumerate(columns):
        for row in range(ROWS):
            assert torch.equal(_tile(grid, row, col), images[row])


def test_label_strip_names_each_column_and_is_white_elsewhere():
    grid = viz.comparison_grid(_columns(3), ["gray", "", "truth"])
    strips = [grid[:, :LABEL_HEIGHT, PADDING + c * (W + PADDING) : (c + 1) * (W + PADDING)] for c in range(3)]
    assert _dark(strips[0]) > 10 and _dark(strips[2]) > 10
    assert _dark(strips[1]) == 0  # an empty label draws nothing


def test_captions_sit_under_their_tiles():
    columns = _columns(2)
    captions = [["PSNR 23.1", ""], ["", "CF 31.2"]]
    grid = viz.comparison_grid(columns, ["a", "b"], captions)
    assert grid.shape[1] == LABEL_HEIGHT + ROWS * (H + CAPTION_HEIGHT + PADDING) + PADDING
    for col in range(2):
        for row in range(ROWS):
            assert torch.equal(_tile(grid, row, col, CAPTION_HEIGHT), columns[col][row])
            top = LABEL_HEIGHT + PADDING + row * (H + CAPTION_HEIGHT + PADDING) + H
            left = PADDING + col * (W + PADDING)
            strip = grid[:, top : top + CAPTION_HEIGHT, left : left + W]
            assert (_dark(strip) > 0) == bool(captions[col][row])


def test_long_labels_stay_inside_their_column():
    grid = viz.comparison_grid(_columns(2), ["a label far wider than its column", ""])
    assert _dark(grid[:, :LABEL_HEIGHT, : PADDING + W]) > 10
    assert _dark(grid[:, :LABEL_HEIGHT, PADDING + W :]) == 0


@pytest.mark.parametrize(
    ("labels", "captions", "message"),
    [
        (["one"], None, "one label per column"),
        (["a", "b"], [["x", "y"]], "captions must be 2 columns of 2"),
        (["a", "b"], [["x"], ["y"]], "captions must be 2 columns of 2"),
    ],
)
def test_grid_rejects_mismatched_labels_and_captions(labels, captions, message):
    with pytest.raises(ValueError, match=message):
        viz.comparison_grid(_columns(2), labels, captions)


def test_grid_rejects_columns_of_other_shapes():
    columns = _columns(2)
    with pytest.raises(ValueError, match="one shape"):
        viz.comparison_grid([columns[0], columns[1][:1]], ["a", "b"])


def test_save_grid_writes_the_png_atomically(tmp_path):
    grid = viz.comparison_grid(_columns(2), ["a", "b"])
    path = tmp_path / "runs" / "grid.png"
    viz.save_grid(grid, path)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert torch.equal(torch.from_numpy(np.array(image)).permute(2, 0, 1), grid)


def test_gray_rgb_keeps_lightness_and_drops_color():
    rgb = _columns(1)[0]
    gray = viz.gray_rgb(rgb)
    assert gray.shape == rgb.shape and gray.dtype == torch.uint8
    assert metrics.colorfulness(gray).tolist() == [0.0, 0.0]
    lightness, gray_lightness = rgb_to_lightness(rgb), rgb_to_lightness(gray)
    assert (gray_lightness - lightness).abs().max() * L_SCALE < 0.5  # L* within uint8 rounding
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    assert viz.gray_rgb(white).eq(255).all()
