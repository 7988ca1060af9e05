"""Reference values for pix2color.metrics: hand-worked numbers and scikit-image as the oracle."""

import math

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from pix2color import metrics
from pix2color.metric_names import METRIC_SPECS


def _random(batch=2, size=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)


def _pixels(*rgb):
    """A (1, 3, 1, N) uint8 image from N RGB triples."""
    return torch.tensor(rgb, dtype=torch.uint8).T.reshape(1, 3, 1, len(rgb))


def test_psnr_identical_is_inf():
    x = _random()
    assert torch.isinf(metrics.psnr(x, x)).all()


def test_psnr_known_mse_per_image():
    target = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    pred = target.clone()
    pred[0] += 5  # MSE 25
    pred[1, :, :2] = 10  # half the values off by 10: MSE 50
    expected = [20 * math.log10(255 / 5), 10 * math.log10(255**2 / 50)]
    assert metrics.psnr(pred, target).tolist() == pytest.approx(expected, rel=1e-6)


def test_colorfulness_worked_by_hand():
    # red, black: rg = 255, 0; yb = 127.5, 0 -> sigma = mu = (127.5, 63.75) -> 1.3 * 63.75 * sqrt(5)
    red_black = _pixels((255, 0, 0), (0, 0, 0))
    # red, green: |R - G| = 255 for both, so sigma_rg = 0 (a signed rg would give 255 and mean 0)
    red_green = _pixels((255, 0, 0), (0, 255, 0))
    cf = metrics.colorfulness(torch.cat([red_black, red_green]))
    assert cf.tolist() == pytest.approx([1.3 * 63.75 * math.sqrt(5), 0.3 * 127.5 * math.sqrt(5)], rel=1e-6)


def test_colorfulness_of_gray_is_zero():
    gray = _random(size=16)[:, :1].expand(-1, 3, -1, -1)
    assert metrics.colorfulness(gray).tolist() == [0.0, 0.0]


def test_ssim_identical_is_one_and_matches_skimage():
    pred, target = _random(seed=1), _random(seed=2)
    target[:, :, :12] = pred[:, :, :12]  # partly similar, so the value is far from 0 and from 1
    assert metrics.ssim(pred, pred).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    expected = [
        structural_similarity(
            p.permute(1, 2, 0).numpy(),
            t.permute(1, 2, 0).numpy(),
            channel_axis=2,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        for p, t in zip(pred, target, strict=True)
    ]
    assert metrics.ssim(pred, target).tolist() == pytest.approx(expected, abs=1e-4)


def test_ssim_rejects_images_smaller_than_the_window():
    x = _random(size=8)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(x, x)


def test_ciede2000_reference_values():
    black, white = (torch.full((1, 3, 2, 2), v, dtype=torch.uint8) for v in (0, 255))
    assert metrics.ciede2000(black, white).item() == pytest.approx(100.0, abs=1e-2)
    x = _random()
    assert metrics.ciede2000(x, x).tolist() == [0.0, 0.0]


def test_ciede2000_matches_skimage_on_random_pixels():
    pred, target = _random(seed=3), _random(seed=4)

    def lab(x):
        return rgb2lab(x.permute(0, 2, 3, 1).numpy())

    expected = deltaE_ciede2000(lab(pred), lab(target)).mean(axis=(1, 2))
    np.testing.assert_allclose(metrics.ciede2000(pred, target).numpy(), expected, rtol=1e-3)


@pytest.mark.parametrize("name", ["psnr", "ssim", "ciede2000"])
def test_pair_metrics_reject_mismatched_inputs(name):
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.METRICS[name](_random(size=16), _random(size=12))
    with pytest.raises(ValueError, match="uint8"):
        metrics.METRICS[name](_random().float(), _random().float())


def test_image_metrics_per_image_and_unknown_name():
    pred, target = _random(batch=3, seed=5), _random(batch=3, seed=6)
    values = metrics.image_metrics(pred, target)
    assert list(values) == ["psnr", "ssim", "colorfulness", "ciede2000"]
    assert all(v.shape == (3,) for v in values.values())
    torch.testing.assert_close(values["colorfulness"], metrics.colorfulness(pred))
    with pytest.raises(ValueError, match="unknown metric 'lpips'; valid: psnr, ssim, colorfulness, ciede2000"):
        metrics.image_metrics(pred, target, ["psnr", "lpips"])


def test_summarize_means_and_delta_cf():
    per_image = {"psnr": torch.tensor([20.0, 30.0]), "colorfulness": torch.tensor([10.0, 20.0])}
    assert metrics.summarize(per_image, None) == {"psnr": 25.0, "colorfulness": 15.0}
    summary = metrics.summarize(per_image, torch.tensor([30.0, 40.0, 50.0]))
    assert summary == {"psnr": 25.0, "colorfulness": 15.0, "delta_cf": 25.0}


def test_opponent_colorfulness_is_the_metric_on_floats_with_finite_gradients_on_gray():
    rgb = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(metrics.opponent_colorfulness(rgb.double()).float(), metrics.colorfulness(rgb))
    gray = torch.full((1, 3, 8, 8), 100.0, requires_grad=True)
    metrics.opponent_colorfulness(gray, eps=1e-6).sum().backward()
    assert torch.isfinite(gray.grad).all()


START = {"psnr": 24.0, "psnr_gray": 22.0, "delta_cf": 20.0}


@pytest.mark.parametrize(
    ("psnr", "delta_cf", "expected"),
    [
        (24.0, 20.0, 0.5),  # the start itself
        (22.0, 0.0, 0.5),  # gray fidelity, the truth's colour: the same trade
        (24.0, 0.0, 1.0),  # stage 1's fidelity and the truth's colour
        (23.7, 10.0, 0.5 * 0.85 + 0.5 * 0.5),  # 0.3 dB lost, half the missing colour found
        (22.0, 20.0, 0.0),  # gray
    ],
)
def test_color_fidelity_weighs_psnr_and_delta_cf_against_the_start_and_gray(psnr, delta_cf, expected):
    summary = {"psnr": psnr, "psnr_gray": 22.0, "delta_cf": delta_cf}
    assert metrics.color_fidelity(summary, START) == pytest.approx(expected)
    assert metrics.color_fidelity(summary, START, color_weight=0.0) == pytest.approx((psnr - 22.0) / 2)


def test_color_fidelity_ranks_by_psnr_when_the_start_is_no_better_than_gray():
    start = {"psnr": 21.0, "psnr_gray": 22.0, "delta_cf": 20.0}
    worse, better = ({"psnr": p, "psnr_gray": 22.0, "delta_cf": 20.0} for p in (21.0, 21.5))
    assert metrics.color_fidelity(better, start) > metrics.color_fidelity(worse, start)


def test_every_per_image_metric_says_which_way_is_better():
    assert all(METRIC_SPECS[name].higher_is_better is not None for name in metrics.METRICS)


def test_optional_metrics_name_the_missing_weights(tmp_path):
    folder = tmp_path / "hub" / "checkpoints"
    status = metrics.optional_metrics_status(tmp_path)
    assert status == {
        "lpips": f"skipped: missing alexnet-owt-7be5be79.pth in {folder}",
        "fid": f"skipped: missing inception_v3_google-0cc3c7bd.pth in {folder}",
    }
    folder.mkdir(parents=True)
    (folder / "inception_v3_google-0cc3c7bd.pth").write_bytes(b"")
    assert "found" in metrics.optional_metrics_status(tmp_path)["fid"]


def test_cdc_is_zero_for_a_steady_clip_and_ln2_for_disjoint_histograms():
    steady = torch.full((6, 3, 8, 8), 100, dtype=torch.uint8)
    assert metrics.cdc(metrics.rgb_histograms(steady)) == pytest.approx(0.0)
    alternating = torch.stack([torch.full((3, 8, 8), 10 if t % 2 else 200, dtype=torch.uint8) for t in range(9)])
    # d = 1 compares disjoint histograms (JS = ln 2); d = 2 and 4 identical ones (0)
    assert metrics.cdc(metrics.rgb_histograms(alternating)) == pytest.approx(math.log(2) / 3)


def test_jensen_shannon_matches_scipy():
    from scipy.stats import entropy

    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.1, 0.6, 0.3])
    m = (p + q) / 2
    expected = 0.5 * entropy(p.numpy(), m.numpy()) + 0.5 * entropy(q.numpy(), m.numpy())
    assert metrics.jensen_shannon(p.double(), q.double()).item() == pytest.approx(expected)


def test_warp_error_counts_only_valid_pixels():
    current = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    warped = current.clone()
    warped[..., :2] = 255
    valid = torch.zeros(1, 1, 4, 4)
    valid[..., 2:] = 1
    assert metrics.warp_error(warped, current, valid).item() == 0
    assert metrics.warp_error(warped, current, torch.ones(1, 1, 4, 4)).item() == pytest.approx(0.5)
