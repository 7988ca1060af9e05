"""Colour: shapes, errors, round trip, reference values, gradients, ranges, mixed precision."""

import itertools

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from pix2color import color

SPACES = ["lab", "luv"]
SKIMAGE_FROM_RGB = {"lab": skcolor.rgb2lab, "luv": skcolor.rgb2luv}
SKIMAGE_TO_RGB = {"lab": skcolor.lab2rgb, "luv": skcolor.luv2rgb}
ROUND_TRIP_TOL = 1e-4  # float32, RGB in [0, 1]
EDGES = [
    (0, 0, 0),
    (1, 1, 1),
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (1, 1, 0),
    (0, 1, 1),
    (1, 0, 1),
    (0.5, 0.5, 0.5),
    (1 / 255, 0, 0),
    (0, 0, 1 / 255),
    (254 / 255, 1, 1),
]


def as_image(colors) -> torch.Tensor:
    """(N, 3) colors -> a (1, 3, N, 1) image."""
    return torch.as_tensor(colors, dtype=torch.float32).T.reshape(1, 3, -1, 1).contiguous()


def rgb_cube(steps: int) -> torch.Tensor:
    levels = torch.linspace(0, 1, steps)
    return as_image(list(itertools.product(levels.tolist(), repeat=3)))


def random_colors(n: int = 4096, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, n, 1, generator=torch.Generator().manual_seed(seed))


def to_hwc(image: torch.Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).double().numpy()


def denormalize(lightness: torch.Tensor, chroma: torch.Tensor, space: str) -> np.ndarray:
    """Our normalised (L, chroma) back to the space's own units, (H, W, 3)."""
    spec = color.SPACES[space]
    center = torch.tensor(spec.chroma_center).view(1, 2, 1, 1)
    scale = torch.tensor(spec.chroma_scale).view(1, 2, 1, 1)
    raw = torch.cat([lightness * color.L_SCALE + color.L_CENTER, chroma * scale + center], dim=1)
    return to_hwc(raw)


def round_trip(rgb: torch.Tensor, space: str) -> torch.Tensor:
    return color.l_chroma_to_rgb(*color.rgb_to_l_chroma(rgb, space), space=space)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 3, 5, 7), (4, 3, 32, 16)])
def test_shapes_and_dtypes(space, shape):
    rgb = torch.rand(shape)
    lightness, chroma = color.rgb_to_l_chroma(rgb, space)
    batch, _, height, width = shape
    assert lightness.shape == (batch, 1, height, width) and chroma.shape == (batch, 2, height, width)
    assert lightness.dtype == chroma.dtype == torch.float32
    back = color.l_chroma_to_rgb(lightness, chroma, space)
    assert back.shape == shape and back.dtype == torch.float32


def test_lightness_alone_is_the_first_output():
    rgb = torch.rand(2, 3, 4, 4)
    assert torch.equal(color.rgb_to_lightness(rgb), color.rgb_to_l_chroma(rgb)[0])


@pytest.mark.parametrize(
    "bad",
    [torch.rand(3, 4, 4), torch.rand(1, 4, 4, 4), torch.rand(1, 1, 4, 4), torch.rand(1, 3, 4), np.zeros((1, 3, 4, 4))],
    ids=["no-batch", "rgba", "gray", "3d", "numpy"],
)
def test_rgb_of_the_wrong_shape_is_refused(bad):
    with pytest.raises(ValueError, match=r"rgb must be a \(B, 3, H, W\) tensor"):
        color.rgb_to_l_chroma(bad)


@pytest.mark.parametrize(
    ("lightness", "chroma", "expected"),
    [
        (torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), r"lightness must be a \(B, 1, H, W\)"),
        (torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 4, 4), r"chroma must be a \(B, 2, H, W\)"),
        (torch.zeros(1, 4, 4), torch.zeros(1, 2, 4, 4), r"lightness must be a \(B, 1, H, W\)"),
        (torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 8, 8), r"must share batch, height and width"),
        (torch.zeros(2, 1, 4, 4), torch.zeros(1, 2, 4, 4), r"must share batch, height and width"),
    ],
    ids=["2-channel-L", "3-channel-chroma", "3d-L", "other-size", "other-batch"],
)
def test_lightness_and_chroma_of_the_wrong_shape_are_refused(lightness, chroma, expected):
    with pytest.raises(ValueError, match=expected):
        color.l_chroma_to_rgb(lightness, chroma)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int16, torch.bool])
def test_integer_rgb_other_than_uint8_is_refused(dtype):
    with pytest.raises(ValueError, match="uint8 in 0..255 or float"):
        color.rgb_to_l_chroma(torch.zeros(1, 3, 2, 2, dtype=dtype))


def test_unknown_space_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown color space 'hsv'; valid: lab, luv"):
        color.rgb_to_l_chroma(torch.rand(1, 3, 2, 2), "hsv")


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize(
    "colors",
    [random_colors(), as_image(EDGES), random_colors(seed=1) * 0.02, rgb_cube(9)],
    ids=["random", "edges", "dark", "cube"],
)
def test_round_trip_within_1e_4(space, colors):
    error = (round_trip(colors, space) - colors).abs().max().item()
    assert error < ROUND_TRIP_TOL, f"{space}: max |rgb - rgb'| = {error:.2e}"


@pytest.mark.parametrize("space", SPACES)
def test_uint8_round_trip_is_exact(space):
    rgb = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(color.to_uint8(round_trip(rgb, space)), rgb)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("colors", [random_colors(512), as_image(EDGES)], ids=["random", "edges"])
def test_forward_matches_scikit_image(space, colors):
    ours = denormalize(*color.rgb_to_l_chroma(colors, space), space)
    reference = SKIMAGE_FROM_RGB[space](to_hwc(colors))
    np.testing.assert_allclose(ours, reference, atol=1e-2, rtol=0)


@pytest.mark.parametrize("space", SPACES)
def test_inverse_matches_scikit_image(space):
    raw = SKIMAGE_FROM_RGB[space](to_hwc(random_colors(512) * 0.9 + 0.05))
    raw_t = torch.from_numpy(raw).permute(2, 0, 1)[None].float()
    spec = color.SPACES[space]
    center = torch.tensor(spec.chroma_center).view(1, 2, 1, 1)
    scale = torch.tensor(spec.chroma_scale).view(1, 2, 1, 1)
    lightness = (raw_t[:, :1] - color.L_CENTER) / color.L_SCALE
    chroma = (raw_t[:, 1:] - center) / scale
    ours = to_hwc(color.l_chroma_to_rgb(lightness, chroma, space))
    np.testing.assert_allclose(ours, SKIMAGE_TO_RGB[space](raw), atol=1e-4, rtol=0)


@pytest.mark.parametrize("space", SPACES)
def test_uint8_input_equals_float_input_over_255(space):
    rgb = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    from_uint8 = color.rgb_to_l_chroma(rgb, space)
    from_float = color.rgb_to_l_chroma(rgb.float() / 255, space)
    for ours, expected in zip(from_uint8, from_float, strict=True):
        torch.testing.assert_close(ours, expected, rtol=0, atol=0)


@pytest.mark.parametrize("space", SPACES)
def test_gradcheck_rgb_to_l_chroma(space):
    rgb = torch.rand(1, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2
    rgb.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: color.rgb_to_l_chroma(x, space), (rgb,))


@pytest.mark.parametrize("space", SPACES)
def test_gradcheck_l_chroma_to_rgb(space):
    rgb = torch.rand(1, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.2
    lightness, chroma = (part.detach().requires_grad_() for part in color.rgb_to_l_chroma(rgb, space))
    assert lightness.dtype == chroma.dtype == torch.float64
    assert torch.autograd.gradcheck(lambda lum, ch: color.l_chroma_to_rgb(lum, ch, space), (lightness, chroma))


def test_float32_gradient_reaches_the_chroma():
    chroma = torch.zeros(1, 2, 4, 4, requires_grad=True)
    color.l_chroma_to_rgb(torch.zeros(1, 1, 4, 4), chroma).sum().backward()
    assert chroma.grad is not None and chroma.grad.abs().sum() > 0


@pytest.mark.parametrize("space", SPACES)
def test_gray_has_no_chroma(space):
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 256, 1).expand(1, 3, 256, 1)
    lightness, chroma = color.rgb_to_l_chroma(levels, space)
    assert chroma.abs().max() < 1e-3
    assert torch.all(lightness.flatten().diff() > 0)  # and L grows with the gray level


@pytest.mark.parametrize("space", SPACES)
def test_zero_chroma_is_gray(space):
    lightness = torch.linspace(-1, 1, 11).view(1, 1, 11, 1)
    rgb = color.l_chroma_to_rgb(lightness, torch.zeros(1, 2, 11, 1), space)
    assert (rgb.amax(1) - rgb.amin(1)).max() < 1e-3


@pytest.mark.parametrize("space", SPACES)
def test_normalised_ranges_over_the_rgb_cube(space):
    lightness, chroma = color.rgb_to_l_chroma(rgb_cube(17), space)
    assert lightness.min() == pytest.approx(-1, abs=1e-6) and lightness.max() == pytest.approx(1, abs=1e-6)
    assert lightness.abs().max() <= 1 + 1e-6
    assert chroma.abs().max() <= 1
    reach = chroma.abs().amax(dim=(0, 2, 3))
    assert torch.all(reach > 0.75), f"{space}: chroma reaches only {reach.tolist()} of [-1, 1]"


@pytest.mark.parametrize("space", SPACES)
def test_bfloat16_autocast_gives_float32_and_the_same_values(space):
    rgb = torch.rand(2, 3, 8, 8)
    expected = color.rgb_to_l_chroma(rgb, space)
    half = [part.bfloat16() for part in expected]  # what a bf16 generator would hand back
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = color.rgb_to_l_chroma(rgb, space)
        back = color.l_chroma_to_rgb(*half, space=space)
    for ours, reference in zip(got, expected, strict=True):
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    assert back.dtype == torch.float32
    torch.testing.assert_close(back, color.l_chroma_to_rgb(*(part.float() for part in half), space=space))


SHARMA_PAIRS = [  # Sharma, Wu and Dalal (2005), Table 1: all 34 Lab pairs and their ΔE2000
    ((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
    ((50, 3.1571, -77.2803), (50, 0, -82.7485), 2.8615),
    ((50, 2.8361, -74.0200), (50, 0, -82.7485), 3.4412),
    ((50, -1.3802, -84.2814), (50, 0, -82.7485), 1.0),
    ((50, -1.1848, -84.8006), (50, 0, -82.7485), 1.0),
    ((50, -0.9009, -85.5211), (50, 0, -82.7485), 1.0),
    ((50, 0, 0), (50, -1, 2), 2.3669),
    ((50, -1, 2), (50, 0, 0), 2.3669),
    ((50, 2.49, -0.001), (50, -2.49, 0.0009), 7.1792),  # 9 to 16: hues near 180 degrees apart
    ((50, 2.49, -0.001), (50, -2.49, 0.001), 7.1792),
    ((50, 2.49, -0.001), (50, -2.49, 0.0011), 7.2195),
    ((50, 2.49, -0.001), (50, -2.49, 0.0012), 7.2195),
    ((50, -0.001, 2.49), (50, 0.0009, -2.49), 4.8045),
    ((50, -0.001, 2.49), (50, 0.001, -2.49), 4.8045),
    ((50, -0.001, 2.49), (50, 0.0011, -2.49), 4.7461),
    ((50, 2.5, 0), (50, 0, -2.5), 4.3065),
    ((50, 2.5, 0), (73, 25, -18), 27.1492),
    ((50, 2.5, 0), (61, -5, 29), 22.8977),
    ((50, 2.5, 0), (56, -27, -3), 31.9030),
    ((50, 2.5, 0), (58, 24, 15), 19.4535),
    ((50, 2.5, 0), (50, 3.1736, 0.5854), 1.0),
    ((50, 2.5, 0), (50, 3.2972, 0), 1.0),
    ((50, 2.5, 0), (50, 1.8634, 0.5757), 1.0),
    ((50, 2.5, 0), (50, 3.2592, 0.3350), 1.0),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA_PAIRS)
def test_delta_e2000_gives_sharmas_reference_values_both_ways(lab1, lab2, expected):
    a, b = (torch.tensor(x, dtype=torch.float64).view(1, 3, 1, 1) for x in (lab1, lab2))
    assert color.delta_e2000(a, b).item() == pytest.approx(expected, abs=1e-4)
    assert color.delta_e2000(b, a).item() == pytest.approx(expected, abs=1e-4)


def test_delta_e2000_matches_skimage_with_gray_and_equal_pixels_and_has_finite_gradients():
    generator = torch.Generator().manual_seed(0)
    low, span = torch.tensor([0.0, -100, -100]).view(1, 3, 1, 1), torch.tensor([100.0, 200, 200]).view(1, 3, 1, 1)
    lab1, lab2 = (low + span * torch.rand(3, 3, 8, 8, generator=generator) for _ in range(2))
    lab1[0, 1:] = 0  # gray against colour
    lab2[1] = lab1[1]  # identical colors
    expected = skcolor.deltaE_ciede2000(lab1.double().numpy(), lab2.double().numpy(), channel_axis=1)
    lab1.requires_grad_()
    lab2.requires_grad_()
    delta = color.delta_e2000(lab1, lab2)
    np.testing.assert_allclose(delta.detach().numpy(), expected, atol=1e-3)
    delta.sum().backward()
    for grad in (lab1.grad, lab2.grad):
        assert torch.isfinite(grad).all() and grad[1].abs().max() == 0 and grad[0].abs().max() > 0


def test_delta_e2000_runs_in_float32_for_half_precision_inputs():
    lab1, lab2 = torch.tensor([50.0, 60, -40]).view(1, 3, 1, 1), torch.tensor([55.0, 40, 20]).view(1, 3, 1, 1)
    full = color.delta_e2000(lab1, lab2)
    half = color.delta_e2000(lab1.half(), lab2.half())
    assert half.dtype == torch.float32 and half.item() == pytest.approx(full.item(), rel=1e-3)
