"""The recipes in configs/ state only what differs from the defaults, so that a changed default reaches them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pix2color.config import Config, load_config

RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def keys_at_default(path: Path) -> list[str]:
    """The dotted keys that the YAML file ``path`` states at their default value (resolved, as training reads it)."""
    raw = yaml.safe_load(path.read_text()) or {}
    cfg, defaults = load_config(path), Config()
    return [
        f"{section}.{key}"
        for section, values in raw.items()
        for key in values
        if getattr(getattr(cfg, section), key) == getattr(getattr(defaults, section), key)
    ]


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.name)
def test_a_recipe_opens_with_a_comment_and_states_no_key_at_its_default(path):
    assert path.read_text().startswith("# "), f"{path.name} does not open with a comment saying what it is for"
    assert keys_at_default(path) == [], f"{path.name} restates defaults of pix2color/config.py"


def test_a_key_at_its_default_is_found_however_it_is_written(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data:\n  size: 128\nmodel:\n  encoder: resnet18\nstage1:\n  lr: 1.0e-3\n  epochs: 3\n")
    assert keys_at_default(recipe) == ["model.encoder", "stage1.lr"]
