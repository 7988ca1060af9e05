"""What ``GET /v1/model`` reports, read from a checkpoint or from a release folder of it."""

from __future__ import annotations

from pix2color.checkpoint import load_checkpoint, save_checkpoint
from pix2color.release import export_release
from pix2color.serve.model import checkpoint_info


def test_a_release_folder_reports_what_its_checkpoint_does(tiny_checkpoint, tmp_path):
    state = load_checkpoint(tiny_checkpoint) | {"stage": "gan", "step": 321, "metrics": {"psnr": 23.5, "ssim": 0.95}}
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(state, checkpoint)
    release = export_release(checkpoint, tmp_path / "release")
    info = checkpoint_info(release)
    assert info == checkpoint_info(checkpoint)
    assert (info["stage"], info["step"], info["metrics"]) == ("gan", 321, {"psnr": 23.5, "ssim": 0.95})
