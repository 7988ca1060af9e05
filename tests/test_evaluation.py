"""pix2color.evaluation: checkpoint labels, labelled Colorizers with their saturations, center-cropped batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pix2color.data import ImageDataset
from pix2color.errors import UserError
from pix2color.evaluation import GRAY, TRUTH, checkpoint_label, iter_batches, load_colorizers


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("runs/quickstart/checkpoints/pretrain/best.pt", "quickstart/pretrain/best"),
        ("old/stage2.pt", "old/stage2"),
        ("model.pt", "model"),
    ],
)
def test_checkpoint_label_names_run_stage_and_file(path, label):
    assert checkpoint_label(Path(path)) == label


def test_one_saturation_serves_every_checkpoint_and_labels_default_to_the_paths(tiny_checkpoint):
    colorizers = load_colorizers([tiny_checkpoint, tiny_checkpoint], ["a", "b"], [1.5], "cpu", 32, batch_size=3)
    assert list(colorizers) == ["a", "b"]
    assert [(c.saturation, c.render_size, c.batch_size) for c in colorizers.values()] == [(1.5, 32, 3)] * 2
    assert list(load_colorizers([tiny_checkpoint], device="cpu")) == [checkpoint_label(tiny_checkpoint)]


@pytest.mark.parametrize("labels", [["a"], ["a", "a"], ["a", GRAY], [TRUTH, "b"]])
def test_missing_repeated_or_reserved_labels_are_a_user_error(tiny_checkpoint, labels):
    with pytest.raises(UserError, match=rf"^need 2 distinct labels other than '{GRAY}' and '{TRUTH}'"):
        load_colorizers([tiny_checkpoint] * 2, labels)


@pytest.mark.parametrize("saturation", [[1.0, 2.0], [1.0, 1.0, 1.0, 1.0], [-0.5]])
def test_a_saturation_per_checkpoint_or_one_of_zero_or_more(tiny_checkpoint, saturation):
    with pytest.raises(UserError, match=r"^--saturation .*: give one factor of 0 or more .* \(3\)\.$"):
        load_colorizers([tiny_checkpoint] * 3, ["a", "b", "c"], saturation)


def test_batches_are_center_crops_without_the_unreadable_files(make_image, tmp_path):
    files = [make_image("wide.png", (80, 48)), tmp_path / "broken.png", make_image("tall.png", (40, 72), seed=1)]
    files[1].write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="broken.png"):
        batches = list(iter_batches(files, 32, batch_size=2, workers=0))
    assert [names for names, _ in batches] == [[files[0]], [files[2]]]
    expected = ImageDataset([files[0], files[2]], 32, train=False)
    for i, (_, batch) in enumerate(batches):
        assert batch.shape == (1, 3, 32, 32) and batch.dtype == torch.uint8
        assert torch.equal(batch[0], expected[i])
