"""A trained model as a folder to share, in the layout model hubs serve: weights, config and a model card.

    RELEASE/model.safetensors   the generator's weights (its EMA weights when it has them), fp16 by default
    RELEASE/config.yaml         the resolved model and colour config, and the training size
    RELEASE/README.md           the model card: training data, recipe, steps, validation metrics

safetensors holds tensors and a JSON header, nothing else: loading it runs no code, unlike unpickling
a ``.pt`` file, so a release is the safe way to pass models around. Without optimizer states,
discriminator or fp32 copies a ResNet18 U-Net release is about a sixth of a training checkpoint.
:func:`pix2color.model_files.load_generator` (and so ``Colorizer.from_pretrained``, ``infer.py``,
``evaluate.py`` and ``compare.py``) takes a release folder wherever it takes a checkpoint; this module
writes releases, :mod:`pix2color.model_files` reads them.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from pix2color.checkpoint import load_checkpoint
from pix2color.config import Config, config_to_dict, released_config, rgb_term_weights, stage2_ema_decay
from pix2color.errors import UserError
from pix2color.files import atomic_write
from pix2color.metric_names import METRIC_SPECS
from pix2color.model_files import CONFIG, WEIGHTS, cast_floats, checkpoint_model, rebuild_generator

CARD = "README.md"
DTYPES = {"fp16": torch.float16, "fp32": torch.float32}
FORMAT_VERSION = "1"


def export_release(checkpoint: str | Path, out: str | Path, dtype: str = "fp16") -> Path:
    """Write the release folder ``out`` for ``checkpoint``; returns ``out``.

    Reads the checkpoint's ``generator_ema`` or ``generator``, ``config`` and ``metrics``, and
    ``step`` and ``stage`` when present. Each file is written atomically; ``out`` may be new, empty or
    an earlier release, whose files are replaced.

    Args:
        checkpoint: a pix2color checkpoint (``best.pt``).
        out: the folder to write.
        dtype: "fp16" or "fp32", how floating-point weights are stored; integer buffers stay as they are.

    Raises:
        CheckpointError: the checkpoint cannot be loaded or its weights do not fit its config.
        UserError: ``out`` is a file, or a folder with other files in it; an unknown ``dtype``.
    """
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype} is not valid; valid dtypes: {', '.join(DTYPES)}.")
    out = Path(out)
    _check_destination(out)
    state = load_checkpoint(checkpoint)
    model = checkpoint_model(state)
    generator, cfg = rebuild_generator(model, checkpoint)  # refuses weights that do not fit
    from safetensors.torch import save

    training = json.dumps(model.record)  # read back by pix2color.model_files.read_release
    metadata = {"format": "pt", "pix2color_release": FORMAT_VERSION, "dtype": dtype, "training": training}
    parameters = sum(p.numel() for p in generator.parameters())
    files = {
        WEIGHTS: save(cast_floats(model.weights, DTYPES[dtype]), metadata=metadata),
        CONFIG: yaml.safe_dump(released_config(cfg), sort_keys=False).encode(),
        CARD: model_card(state, cfg, Path(checkpoint), dtype, parameters).encode(),
    }
    for name, data in files.items():
        with atomic_write(out / name) as handle:
            handle.write(data)
    return out


def model_card(state: dict[str, Any], cfg: Config, checkpoint: Path, dtype: str, parameters: int) -> str:
    """The release's README.md: how to use it, what it is, how it was trained and how it scored."""
    stage = state.get("stage")
    ema = "generator_ema" in state
    lines = [
        "---",
        "library_name: pix2color",
        "pipeline_tag: image-to-image",
        "tags: [image-colorization, pix2pix, unet]",
        "---",
        "",
        f"# pix2color colorization model: {cfg.model.encoder} U-Net, {_stage_title(state)}",
        "",
        "Colors black-and-white photos: reads the lightness L of a Lab image and predicts its color (ab); "
        "the color is joined with the photo's own full-resolution lightness.",
        "",
        "## Use",
        "",
        "```bash",
        "pix2color-infer photos/ --checkpoint THIS_FOLDER --out colorized",
        "```",
        "",
        "```python",
        "from pix2color import Colorizer",
        'colorizer = Colorizer.from_pretrained("THIS_FOLDER")',
        "```",
        "",
        f"`{WEIGHTS}` holds tensors only: loading it runs no code. Weights stored as {dtype}"
        f"{' (loaded as fp32)' if dtype != 'fp32' else ''}; {'EMA weights' if ema else 'the generator weights'}.",
        "",
        "## Model",
        "",
        *_table(
            ("encoder", cfg.model.encoder),
            ("parameters", f"{parameters / 1e6:.1f} M"),
            ("color space", cfg.color.space),
            ("training size", f"{cfg.data.size} px"),
            ("last_cross / self_attention / blur / spectral_norm", _flags(cfg)),
            ("fusion", cfg.model.fusion),
        ),
        "",
        "## Training",
        "",
        *_table(
            ("training data", ", ".join(cfg.data.train) or "not recorded"),
            ("validation data", ", ".join(cfg.data.val) or f"{cfg.data.val_fraction:.0%} of the training data"),
            ("encoder init", cfg.model.pretrained),
            ("stage", stage or "not recorded"),
            ("steps", _steps(state)),
            ("epochs (stage 1 + stage 2)", f"{cfg.stage1.epochs} + {cfg.stage2.epochs}"),
            ("batch size", cfg.train.batch_size),
            ("stage 1", _stage1(cfg)),
            ("stage 2", _stage2(cfg)),
            (
                "EMA decay (stage 1, stage 2)",
                f"{cfg.train.ema_decay:g}, {stage2_ema_decay(cfg):g}",
            ),
        ),
        "",
        "## Validation metrics (from the checkpoint)",
        "",
        *_metrics(state.get("metrics") or {}),
        "",
        f"Exported from `{checkpoint.name}` by `pix2color-export --release` on "
        f"{datetime.date.today().isoformat()}. The full training config:",
        "",
        "```json",
        json.dumps(config_to_dict(cfg), indent=1, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def _steps(state: dict) -> str:
    """The card's steps row: the step the weights were taken at, and whether they are the stage's start."""
    steps = str(state.get("step", "not recorded"))
    return f"{steps} (the weights the stage started from: no epoch beat them)" if state.get("from_start") else steps


def _check_destination(out: Path) -> None:
    if out.is_file():
        raise UserError(f"--release {out} is a file; pass a folder for the release.")
    if out.is_dir() and any(out.iterdir()) and not (out / WEIGHTS).is_file():
        raise UserError(f"--release {out} holds other files and is not a release; choose a new or empty folder.")


# The titles of the two stages for checkpoints written before the loop recorded each stage's title.
TITLES_BEFORE_STAGE_TITLE = {"pretrain": "stage 1 (L1)", "gan": "stage 2 (pix2pix GAN)"}


def _stage_title(state: dict[str, Any]) -> str:
    """How the checkpoint's stage calls itself (the loop records its title), else its name."""
    stage = state.get("stage")
    return state.get("stage_title") or TITLES_BEFORE_STAGE_TITLE.get(stage, stage or "stage not recorded")


def _flags(cfg: Config) -> str:
    model = cfg.model
    return " / ".join(str(v).lower() for v in (model.last_cross, model.self_attention, model.blur, model.spectral_norm))


def _stage1(cfg: Config) -> str:
    s1 = cfg.stage1
    resizing = f", {s1.small_size} px crops for its first {s1.small_share:.0%}" if s1.small_size else ""
    return f"L1 on ab, lr {s1.lr:g}, {s1.schedule}{resizing}"


def _stage2(cfg: Config) -> str:
    s2, disc = cfg.stage2, cfg.disc
    terms = [f"{s2.gan_weight:g} x {s2.gan_loss} GAN", f"{s2.lambda_l1:g} x L1"]
    terms += [f"{weight:g} x {name}" for name, weight in rgb_term_weights(s2).items()]
    return f"{' + '.join(terms)}, lr {s2.lr:g}, PatchGAN of {disc.n_layers} layers, {disc.norm} norm"


def _table(*rows: tuple[str, Any]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)]


def _metrics(metrics: dict[str, float]) -> list[str]:
    if not metrics:
        return ["Not recorded in the checkpoint."]
    names = [m for m in METRIC_SPECS if m in metrics] + sorted(set(metrics) - set(METRIC_SPECS))
    return ["| metric | value |", "|---|---:|", *(f"| {name} | {float(metrics[name]):.4g} |" for name in names)]
