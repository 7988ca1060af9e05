"""Hint points as a person gives them: parsed and checked from JSON, mapped onto the render square, and carried
by the Colorizer to the model (a stand-in model that paints the hint chroma it is given, so the mapping shows)."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pix2color import color
from pix2color.errors import UserError
from pix2color.hint_points import Hint, check_inside, hints_tensor, parse_hints, read_json
from pix2color.inference import Colorizer


class PaintsItsHints(nn.Module):
    """A stand-in generator that takes hints and returns their chroma (gray where there is none)."""

    takes_hints = True

    def forward(self, lightness: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        return torch.zeros_like(lightness).expand(-1, 2, -1, -1) if hints is None else hints[:, :2]


def test_hints_parse_from_hex_or_lab_with_a_default_size():
    red, lab = parse_hints([{"x": 3, "y": 4.5, "color": "#ff0000", "size": 5}, {"x": 0, "y": 0, "lab": [0, 0]}], "h")
    assert red == Hint(3.0, 4.5, (1.0, 0.0, 0.0), 5.0)
    assert lab.size == 8.0 and lab.rgb == pytest.approx((0.4663,) * 3, abs=2e-3)  # L 50 gray


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"x": 1}, "hints must be a JSON list"),
        ([{"x": 1, "y": 2}], "h: hint 1 must be an object with x, y and either color or lab"),
        ([{"x": 1, "y": 2, "color": "#ff0000", "lab": [1, 2]}], "either color or lab"),
        ([{"x": 1, "y": 2, "color": "red"}], "h: hint 1: color='red' is not an RGB hex colour"),
        ([{"x": 1, "y": 2, "lab": [1]}], r"lab=\[1\] must be two numbers"),
        ([{"x": "1", "y": 2, "color": "#ff0000"}], "x, y and size must be numbers"),
        ([{"x": 10**400, "y": 2, "color": "#ff0000"}], r"x, y and size must be finite numbers, got \{'x': 1000"),
        ([{"x": 1, "y": 2, "lab": [float("nan"), 0]}], r"lab=\[nan, 0\] must be two numbers"),
        ([{"x": 1, "y": 2, "lab": [True, 0]}], r"lab=\[True, 0\] must be two numbers"),
        ([{"x": 1, "y": 2, "color": "#ff0000"}, {"x": 1, "y": 2, "color": "#00ff00", "size": 0}], "hint 2: size=0"),
    ],
)
def test_a_malformed_hint_is_named_in_one_sentence(items, message):
    with pytest.raises(UserError, match=message):
        parse_hints(items, "h")


def test_a_hint_outside_the_photo_is_named():
    check_inside([Hint(199.5, 99.0, (1, 0, 0))], 200, 100, "p")
    with pytest.raises(UserError, match=r"p: hint 2 at x=200, y=5 lies outside the 200x100 photo"):
        check_inside([Hint(1, 1, (1, 0, 0)), Hint(200, 5, (1, 0, 0))], 200, 100, "p")


def test_points_map_to_the_render_square_with_their_colours_chroma():
    tensor = hints_tensor([Hint(150, 25, (1.0, 0.0, 0.0), size=25)], 200, 100, 64, "lab")
    mask = tensor[0, 2]
    rows, cols = torch.nonzero(mask, as_tuple=True)
    assert (rows.float().mean().item(), cols.float().mean().item()) == pytest.approx((16, 48), abs=1)
    assert mask.sum() == 8 * 8  # 25 px of the longer side, 200, at 64: 8 px
    _, red = color.rgb_to_l_chroma(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
    assert torch.allclose(tensor[0, :2, 16, 48], red.flatten(), atol=1e-6)
    assert hints_tensor([], 200, 100, 64, "lab").abs().sum() == 0


def test_the_colorizer_gives_the_model_the_hints_at_their_place_in_the_photo():
    colorizer = Colorizer(PaintsItsHints(), render_size=64, precision="fp32", channels_last=False, hint_spread=None)
    photo = Image.fromarray(np.full((100, 200, 3), 128, dtype=np.uint8))
    hinted = np.asarray(colorizer.colorize(photo, hints=[Hint(150, 25, (0.8, 0.1, 0.1), size=20)]), dtype=int)
    red, green, _ = hinted[25, 150]
    assert red - green > 40  # the point is red
    assert np.abs(hinted[80, 20] - hinted[80, 20].mean()).max() <= 1  # far from it, gray
    plain = np.asarray(colorizer.colorize(photo), dtype=int)
    assert np.abs(plain - plain.mean(axis=2, keepdims=True)).max() <= 1  # no hints: the model's own (gray) colour
    with pytest.raises(UserError, match="photo 1: hint 1 at x=250"):
        colorizer.colorize(photo, hints=[Hint(250, 25, (0.8, 0.1, 0.1))])


def test_a_model_without_hints_takes_them_through_the_spread_and_refuses_them_without_it():
    gray_model = nn.Conv2d(1, 2, 1)
    nn.init.zeros_(gray_model.weight), nn.init.zeros_(gray_model.bias)
    colorizer = Colorizer(gray_model, render_size=32, precision="fp32", channels_last=False)
    photo = Image.new("RGB", (40, 40), (90, 90, 90))
    red = np.asarray(colorizer.colorize(photo, hints=[Hint(5, 5, (0.7, 0.2, 0.2), size=4)]), dtype=int)
    assert (red[:15, :15, 0] - red[:15, :15, 2] > 40).all()  # a flat photo: the hint's colour spreads around it
    gray = np.asarray(colorizer.colorize(photo, saturation=0, hints=[Hint(5, 5, (0.7, 0.2, 0.2), size=4)]), dtype=int)
    assert np.abs(gray - gray.mean(axis=2, keepdims=True)).max() <= 1  # saturation 0 is gray, hinted or not
    colorizer.hint_spread = None
    with pytest.raises(UserError, match="takes no colour hints itself .* and the hint spread is off"):
        colorizer.colorize(photo, hints=[Hint(1, 1, (1, 0, 0))])
    assert colorizer.colorize(photo).size == (40, 40)


def test_a_hint_on_the_last_pixel_of_a_large_photo_keeps_its_square_on_the_render():
    tensor = hints_tensor([Hint(1023, 767, (0.0, 0.0, 1.0))], 1024, 768, 256, "lab")
    rows, cols = torch.nonzero(tensor[0, 2], as_tuple=True)
    assert len(rows) > 0 and rows.max() == 255 and cols.max() == 255


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[{", r"^my hints is not valid JSON \(Expecting"),
        (b"[\xff]", r"^my hints is not UTF-8 JSON of a readable size"),
        ("[" + "1" * 5000 + "]", r"^my hints is not UTF-8 JSON of a readable size"),
        ("[" * 100_000, r"^my hints is not"),
    ],
)
def test_read_json_says_in_one_sentence_why_text_is_not_hints_json(data, message):
    with pytest.raises(UserError, match=message):
        read_json(data, "my hints")
