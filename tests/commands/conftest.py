"""Fixtures for the command tests: a tiny checkpoint as the trainer writes it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def infer_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet18 stage 1 checkpoint trained at 64 px (random weights), written once per session."""
    import torch

    from pix2color.checkpoint import save_checkpoint
    from pix2color.config import config_to_dict, load_config
    from pix2color.models.generator import build_generator

    cfg = load_config(None, ["model.pretrained=none", "data.size=64"])
    torch.manual_seed(0)
    generator = build_generator(cfg.model, 64)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint({"config": config_to_dict(cfg), "stage": "pretrain", "generator": generator.state_dict()}, path)
    return path
