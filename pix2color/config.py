"""Nested dataclass config: the only place defaults live.

``load_config(path, overrides)`` reads a YAML file from ``configs/``, applies dotted ``--set``
overrides (``train.batch_size=8``) and checks every key, type and value. Any problem raises
:class:`ConfigError` with one sentence naming the key, where it came from and the valid values.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pix2color.errors import ConfigError
from pix2color.metric_names import RANKING_METRICS

ColorSpace = Literal["lab", "luv"]
Device = Literal["auto", "cpu", "cuda"]
Backend = Literal["torch", "onnxruntime"]  # what runs the generator in inference
Precision = Literal["auto", "fp32"]  # inference arithmetic: the autocast choice of runtime.amp_dtype, or plain fp32


# Named choices: each builder table (models.generator.ENCODERS and CHROMA_HEADS, models.encoder_input.ENCODER_INPUTS,
# models.discriminator.NORMS, losses.GAN_LOSSES, training.schedules) is keyed by one of these, and a test checks
# that they cover them.
Encoder = Literal[
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "vgg16_bn",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
]
EncoderInput = Literal["rgb", "lightness"]
ChromaHead = Literal["regression", "bins"]
DiscNorm = Literal["batch", "instance", "spectral", "none"]
GanLossName = Literal["vanilla", "lsgan", "hinge"]
Stage1Schedule = Literal["onecycle", "cosine"]
Stage2Schedule = Literal["linear", "cosine", "constant"]
MetricName = Literal[RANKING_METRICS]  # the metrics that can pick best.pt, from metric_names

# Properties of config keys, marked on the fields (``field(metadata={...})``) and read by :func:`marked_keys`:
RESUME_SAFE = "resume_safe"  # --set may change it on --resume: not the schedule, data order or model
TRAINING_ONLY = "training_only"  # a model key the weights fit either way (how they were initialised, trained, decoded)
RELEASED = "released"  # a release keeps it: what inference needs of a config
RGB_TERM = "rgb_term"  # a stage-2 weight of G's loss term on RGB images; its value names the term


def marked(default: Any, *marks: str, **values: Any) -> Any:
    """A dataclass field with ``default`` (a plain value) whose metadata holds ``marks`` (each True) and ``values``
    (e.g. ``rgb_term="ciede2000"``)."""
    return field(default=default, metadata=dict.fromkeys(marks, True) | values)


@dataclass
class DataConfig:
    """Where the images come from and how they are cut."""

    train: list[str] = field(default_factory=list)  # folders (recursive) or manifest files
    val: list[str] = field(default_factory=list)  # empty: a seeded split of `train`
    val_fraction: float = 0.05  # share of `train` held out when `val` is empty
    max_val_images: int = 200  # cap on validation images per epoch (0: all)
    size: int = marked(256, RELEASED)  # training crop, a multiple of 32; a release's default render size
    workers: int = marked(2, RESUME_SAFE)  # DataLoader workers per process
    max_bad_fraction: float = 0.05  # stop before training when more files than this are unreadable
    max_image_pixels: int = 100_000_000  # larger images are refused as decompression bombs
    grid_images: int = 8  # fixed val images drawn in each epoch's comparison grid


@dataclass
class ColorConfig:
    """The colour space the generator predicts chroma in."""

    space: ColorSpace = "lab"


@dataclass
class ModelConfig:
    """The U-Net generator on a pretrained encoder."""

    encoder: Encoder = "resnet18"
    # imagenet | none | PATH to a torchvision state dict (a timm one for the Lite encoders)
    pretrained: str = marked("imagenet", TRAINING_ONLY)
    # rgb: the encoder reads the gray image in RGB normalised as its ImageNet training did, through its RGB first
    # conv; lightness: L in [-1, 1] through the first conv's summed RGB kernels (stored configs lacking the key)
    encoder_input: EncoderInput = "lightness"
    # the generator also reads colour hints: their chroma (2 channels, 0 where there is none) and a mask (1 channel)
    # beside L, through first-conv kernels that start at zero; without hints it colorizes automatically
    hints: bool = False
    self_attention: bool = False
    blur: bool = False
    last_cross: bool = True  # the full-resolution cross block: about half of the FLOPs
    spectral_norm: bool = False  # spectral norm in the decoder
    # none | resnet50 | inception_v3 | a timm model name: a frozen classifier whose global embedding
    # is fused at the bottleneck
    fusion: str = "none"
    # regression: two channels of chroma, trained with L1 in stage 1; bins: a distribution over quantized
    # chroma trained with class-rebalanced cross-entropy (Zhang et al.), decoded by its annealed mean
    chroma_head: ChromaHead = "regression"
    # the annealed mean's temperature: 1 the mean, towards 0 the mode
    bins_temperature: float = marked(0.38, TRAINING_ONLY)
    encoder_frozen_epochs: int = marked(0, TRAINING_ONLY)  # stage 1 epochs that train the decoder alone
    # the first share of stage 1 (by steps or time, like progressive resizing) that trains the decoder alone
    encoder_frozen_share: float = marked(0.0, TRAINING_ONLY)
    # frozen: the encoder's BatchNorm layers keep the running statistics they came with (eval mode) in every
    # stage, while their weights still train; train: they follow each batch, as any BatchNorm in training mode
    encoder_batchnorm: Literal["train", "frozen"] = marked("train", TRAINING_ONLY)
    encoder_lr_mult: float = marked(0.1, TRAINING_ONLY)  # encoder learning rate relative to the decoder once unfrozen
    # the hint pyramid's learning rate relative to the decoder's: its kernels start at zero and must grow to the
    # scale of the encoder features they are added to
    hints_lr_mult: float = marked(10.0, TRAINING_ONLY)


@dataclass
class DiscriminatorConfig:
    """The conditional PatchGAN on cat(L, ab)."""

    n_layers: int = 3  # 3 gives the 70x70 receptive field
    ndf: int = 64
    norm: DiscNorm = "spectral"  # spectral is part of the stage-2 recipe
    hints: bool = False  # D also reads the hints G was given (a model with model.hints), beside L and the chroma


@dataclass
class TrainConfig:
    """What both stages share: batch, device, speed switches, checkpoints, logging."""

    batch_size: int = 16  # per process; under torchrun the global batch is this times the world size
    amp: bool = True  # autocast: fp16 (with a grad scaler) or bf16 on CUDA; bf16 on CPUs with native bf16
    amp_dtype: Literal["auto", "bf16", "fp16"] = "auto"
    channels_last: bool = True
    compile: bool = marked(False, RESUME_SAFE)  # torch.compile the generator and discriminator
    device: Device = marked("auto", RESUME_SAFE)
    seed: int = 0
    deterministic: bool = False  # deterministic algorithms and loader order, for exact resumes
    ema_decay: float = 0.0  # generator EMA (0: off) of stage 1, and of stage 2 when stage2.ema_decay is 0
    grad_clip: float = 0.0  # max gradient norm, 0 turns clipping off
    save_every_steps: int = marked(200, RESUME_SAFE)  # last.pt every N steps, and at every epoch end
    log_every_steps: int = marked(10, RESUME_SAFE)
    val_every_epochs: int = marked(1, RESUME_SAFE)
    best_metric: MetricName = "psnr"  # picks stage 1's best.pt (stage 2's: stage2.best_metric)
    sync_batchnorm: bool = False  # SyncBatchNorm under DDP
    max_steps_per_epoch: int = 0  # 0: the whole data set every epoch
    minutes: float = 0.0  # time budget of the whole run (0: the epochs alone decide); epochs still cap it


@dataclass
class Stage1Config:
    """Stage 1: the generator alone, L1 on ab."""

    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: Stage1Schedule = "onecycle"
    warmup_fraction: float = 0.1  # share of the stage spent warming up
    share: float = 0.5  # share of train.minutes stage 1 gets when both stages run
    # progressive resizing: the first small_share of the stage trains on small_size crops (0: off), the rest
    # at data.size; a step at 64 px takes about a quarter of the time of one at 128, so the net sees more images
    small_size: int = 0
    small_share: float = 0.75
    # model.chroma_head=bins: share of the uniform distribution mixed into the colour prior before it is
    # inverted into class weights (Zhang et al.'s lambda): 0.5 boosts rare colours, 1 weighs all alike
    prior_mix: float = 0.5


@dataclass
class Stage2Config:
    """Stage 2: pix2pix adversarial refinement from stage 1's weights.

    The defaults are the recipe the ablations of docs/quality.md chose (40 minutes, 128 px, one stage 1): a
    quarter of pix2pix's learning rate, an EMA of G, the GAN weight ramped in over 200 steps, a small
    colorfulness gap, and a least-squares GAN loss with one-sided label smoothing against a spectral-norm D
    (``disc.norm``). It reached each colourfulness at the least loss of PSNR of the candidates measured.
    pix2pix's own values: ``lr=2e-4 ema_decay=0 gan_ramp_steps=0 colorfulness_weight=0 gan_loss=vanilla
    real_label=1`` and ``disc.norm=batch``.
    """

    epochs: int = 20
    init_from: str = ""  # stage 1 checkpoint; empty: the run's own stage 1 best.pt
    lr: float = 5e-5  # generator learning rate
    d_lr_ratio: float = 1.0  # discriminator lr = lr * d_lr_ratio
    beta1: float = 0.5
    beta2: float = 0.999
    gan_loss: GanLossName = "lsgan"
    # G's loss: gan_weight * GAN + lambda_l1 * L1 + each *_weight below times its term
    gan_weight: float = 1.0
    gan_ramp_steps: int = 200  # G steps over which the GAN weight rises linearly from 0 (0: constant)
    lambda_l1: float = 100.0
    perceptual_weight: float = marked(0.0, rgb_term="perceptual")  # VGG16 feature loss, 0 turns it off
    # |CF(fake) - CF(truth)| per image, in colorfulness units; 0 turns it off
    colorfulness_weight: float = marked(0.1, rgb_term="colorfulness")
    # mean CIEDE2000 between fake and truth, in ΔE units; 0 turns it off
    ciede2000_weight: float = marked(0.0, rgb_term="ciede2000")
    ema_decay: float = 0.99  # EMA of G in stage 2 only; 0: train.ema_decay applies
    real_label: float = 0.9  # D's target for real images; 0.9 is one-sided label smoothing
    g_schedule: Stage2Schedule = "linear"  # G's learning rate: constant, then this decay to 0 (training.schedules)
    d_schedule: Stage2Schedule = "linear"  # D's learning rate, likewise
    decay_start: float = 0.5  # share of the stage after which the learning rates decay
    d_warmup_steps: int = 0  # steps that train D alone before G sees the GAN loss; G's schedule starts after
    # picks stage 2's best.pt: color_fidelity weighs PSNR and ΔCF against the stage's start (metrics.color_fidelity)
    best_metric: MetricName = "color_fidelity"
    color_weight: float = 0.5  # colour's share of color_fidelity; the rest is fidelity


@dataclass
class HintsConfig:
    """How training draws colour hints from the truth for a model with ``model.hints`` (Zhang et al. 2017)."""

    stop_probability: float = 0.125  # hints per image are geometric: P(k) = (1 - p)^k p, so a share p gets none
    max_count: int = 64  # the cap on hints per image
    min_size: int = 1  # patch sides in pixels at reference_size, scaled with the crop
    max_size: int = 9
    reference_size: int = 256
    center_sigma: float = 0.25  # patch centres: a normal around the image centre, sigma this share of the side


@dataclass
class Config:
    """A whole run: every section has defaults, YAML files override them."""

    data: DataConfig = field(default_factory=DataConfig)
    color: ColorConfig = field(default_factory=ColorConfig, metadata={RELEASED: True})
    model: ModelConfig = field(default_factory=ModelConfig, metadata={RELEASED: True})
    disc: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    hints: HintsConfig = field(default_factory=HintsConfig)


def marked_keys(mark: str) -> list[str]:
    """The dotted keys whose field carries ``mark`` (e.g. :data:`RESUME_SAFE`), in field order; a marked section
    gives all its keys."""
    sections = typing.get_type_hints(Config)
    return [
        f"{section.name}.{key.name}"
        for section in dataclasses.fields(Config)
        for key in dataclasses.fields(sections[section.name])
        if mark in section.metadata or mark in key.metadata
    ]


def rgb_term_weights(stage2: Stage2Config) -> dict[str, float]:
    """The weight of each of G's loss terms on RGB images (fields marked :data:`RGB_TERM`) that ``stage2`` turns
    on (a weight above 0), by the term's name."""
    terms = (key for key in dataclasses.fields(stage2) if RGB_TERM in key.metadata)
    weights = {key.metadata[RGB_TERM]: getattr(stage2, key.name) for key in terms}
    return {name: weight for name, weight in weights.items() if weight}


def released_config(cfg: Config) -> dict[str, Any]:
    """What a release keeps of ``cfg`` (the keys marked :data:`RELEASED`), as nested dicts."""
    resolved, kept = config_to_dict(cfg), {}
    for key in marked_keys(RELEASED):
        section, _, name = key.partition(".")
        kept.setdefault(section, {})[name] = resolved[section][name]
    return kept


def stage2_ema_decay(cfg: Config) -> float:
    """The EMA decay of stage 2's generator: ``stage2.ema_decay``, or ``train.ema_decay`` when that is 0."""
    return cfg.stage2.ema_decay or cfg.train.ema_decay


def load_config(path: str | Path | None = None, overrides: typing.Iterable[str] = ()) -> Config:
    """Read a YAML config, apply ``key=value`` overrides and check everything.

    Args:
        path: a YAML file; None starts from the defaults.
        overrides: dotted ``section.key=value`` strings; values are parsed as YAML scalars.

    Raises:
        ConfigError: naming the key, the file (or ``--set``) and the valid values.
    """
    source = str(path) if path is not None else "the defaults"
    raw = _read_yaml(Path(path)) if path is not None else {}
    cfg = config_from_dict(raw, source)
    validate(cfg, source, apply_overrides(cfg, overrides))
    return cfg


def apply_overrides(cfg: Config, overrides: typing.Iterable[str]) -> set[str]:
    """Apply dotted ``section.key=value`` strings (values parsed as YAML scalars) to ``cfg`` in place.

    Returns:
        The dotted keys that were set, so :func:`validate` can blame ``--set`` for their values.
    """
    overridden = set()
    for item in overrides:
        key, value = _split_override(item)
        set_value(cfg, key, value, "--set")
        overridden.add(key)
    return overridden


def config_from_dict(raw: dict[str, Any], source: str) -> Config:
    """Build a :class:`Config` from nested dicts (YAML or a checkpoint), checking keys, types and names."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}.")
    return _build(Config, raw, "", source)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dicts of the resolved config, for YAML files and checkpoints."""
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def set_value(cfg: Config, key: str, value: Any, source: str) -> None:
    """Set the dotted ``key`` of ``cfg`` to ``value`` after checking its type."""
    section_name, _, name = key.partition(".")
    sections = {f.name for f in dataclasses.fields(Config)}
    if section_name not in sections or not name:
        raise ConfigError(
            f"{source}: unknown key '{key}'; keys look like section.name with section one of {sorted(sections)}."
        )
    section = getattr(cfg, section_name)
    hints = typing.get_type_hints(type(section))
    if name not in hints:
        raise _unknown_key(source, key, list(hints), f"'{section_name}'")
    setattr(section, name, _coerce(value, hints[name], key, source))


def validate(cfg: Config, source: str, overridden: typing.Collection[str] = ()) -> None:
    """Check the values that types alone cannot: ranges, multiples, consistency.

    Args:
        cfg: the config to check.
        source: the file it came from, named in the error.
        overridden: dotted keys set by ``--set``; an error on one of them names ``--set`` instead.
    """

    def fail(key: str, text: str) -> typing.NoReturn:
        raise ConfigError(f"{'--set' if key in overridden else source}: {text}")

    try:
        check_size(cfg.data.size, f"data.size={cfg.data.size}")
    except ConfigError as exc:
        fail("data.size", str(exc))
    ranges = {name: {key: _get(cfg, key) for key in keys} for name, keys in RANGED_KEYS.items()}
    positive, non_negative, fractions = ranges["positive"], ranges["non_negative"], ranges["fractions"]
    for key, value in positive.items():
        if value <= 0:
            fail(key, f"{key}={value} must be greater than 0.")
    for key, value in non_negative.items():
        if value < 0:
            fail(key, f"{key}={value} must be 0 or more.")
    for key, value in fractions.items():
        if not 0 <= value < 1:
            fail(key, f"{key}={value} must be in [0, 1).")
    if not 0 < cfg.stage1.prior_mix <= 1:
        fail("stage1.prior_mix", f"stage1.prior_mix={cfg.stage1.prior_mix} must be in (0, 1]; 1 turns rebalancing off.")
    if cfg.stage1.small_size:
        _check_small_size(cfg, fail)
    if cfg.hints.stop_probability > 1:
        fail("hints.stop_probability", f"hints.stop_probability={cfg.hints.stop_probability} must be at most 1.")
    if cfg.hints.min_size > cfg.hints.max_size:
        sizes = f"hints.min_size={cfg.hints.min_size} must not exceed hints.max_size={cfg.hints.max_size}."
        fail("hints.min_size", sizes)
    if cfg.disc.hints and not cfg.model.hints:
        fail("disc.hints", "disc.hints=true shows D the generator's hints, so it needs model.hints=true too.")
    if not 0 < cfg.stage1.share < 1:
        fail("stage1.share", f"stage1.share={cfg.stage1.share} must be between 0 and 1 (stage 2 gets the rest).")
    if cfg.train.best_metric == "color_fidelity":
        fail(
            "train.best_metric",
            "train.best_metric=color_fidelity scores stage 2 against its start; stage 1 starts from scratch, "
            "so set it as stage2.best_metric and pick stage 1 by psnr, ssim, ciede2000 or l1.",
        )
    if not 0.5 < cfg.stage2.real_label <= 1:
        label = cfg.stage2.real_label
        fail("stage2.real_label", f"stage2.real_label={label} must be in (0.5, 1]; 1 turns smoothing off.")
    if not 0 <= cfg.train.ema_decay < 1:
        fail("train.ema_decay", f"train.ema_decay={cfg.train.ema_decay} must be in [0, 1); 0 turns EMA off.")


# Dotted keys by the range their values must lie in: positive, non-negative, or a fraction in [0, 1).
RANGED_KEYS: dict[str, tuple[str, ...]] = {
    "positive": (
        "stage1.lr",
        "stage2.lr",
        "stage2.d_lr_ratio",
        "train.batch_size",
        "model.encoder_lr_mult",
        "model.hints_lr_mult",
        "model.bins_temperature",
        "disc.ndf",
        "disc.n_layers",
        "data.max_image_pixels",
        "train.save_every_steps",
        "train.log_every_steps",
        "train.val_every_epochs",
        "hints.stop_probability",
        "hints.max_count",
        "hints.min_size",
        "hints.max_size",
        "hints.reference_size",
        "hints.center_sigma",
    ),
    "non_negative": (
        "stage1.epochs",
        "stage2.epochs",
        "stage1.weight_decay",
        "stage2.lambda_l1",
        "stage2.perceptual_weight",
        "stage2.colorfulness_weight",
        "stage2.ciede2000_weight",
        "stage2.d_warmup_steps",
        "stage2.gan_weight",
        "stage2.gan_ramp_steps",
        "train.minutes",
        "model.encoder_frozen_epochs",
        "data.workers",
        "data.max_val_images",
        "data.grid_images",
        "train.grad_clip",
        "train.max_steps_per_epoch",
    ),
    "fractions": (
        "data.val_fraction",
        "data.max_bad_fraction",
        "stage1.warmup_fraction",
        "model.encoder_frozen_share",
        "stage2.beta1",
        "stage2.beta2",
        "stage2.decay_start",
        "stage2.color_weight",
        "stage2.ema_decay",
        "stage1.small_share",
    ),
}


def _check_small_size(cfg: Config, fail: typing.Callable[[str, str], typing.NoReturn]) -> None:
    """Fail unless stage1.small_size is a valid size below data.size."""
    small, size = cfg.stage1.small_size, cfg.data.size
    try:
        check_size(small, f"stage1.small_size={small}")
    except ConfigError as exc:
        fail("stage1.small_size", f"{exc} 0 turns progressive resizing off.")
    if small >= size:
        fail(
            "stage1.small_size",
            f"stage1.small_size={small} must be below data.size={size}; set a smaller multiple of 32, or "
            "stage1.small_size=0 to turn progressive resizing off.",
        )


def _get(cfg: Config, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(cfg, section), name)


def check_size(size: int, what: str) -> None:
    """Raise ConfigError unless ``size`` is a positive multiple of 32 (the U-Net halves it five times).

    Args:
        size: an image side in pixels.
        what: how the message names it, e.g. ``"data.size=100"`` or ``"--render-size 100"``.
    """
    if size <= 0 or size % 32:
        low, high = nearest_sizes(size)
        raise ConfigError(f"{what} must be a positive multiple of 32; nearest valid sizes: {low}, {high}.")


def nearest_sizes(n: int) -> tuple[int, int]:
    """The valid sizes (positive multiples of 32) just below and above ``n``; ``(n, n)`` when ``n`` is valid."""
    if n > 0 and n % 32 == 0:
        return n, n
    low = max(32, n // 32 * 32)
    return low, low + 32


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass one of the files in configs/ to --config.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text YAML file; pass one of the files in configs/ to --config.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}: YAML syntax error{where}; fix the file or start from configs/quickstart.yaml."
        ) from None
    return raw or {}


def _split_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set: '{item}' is not key=value; write it like train.batch_size=8.")
    try:
        return key.strip(), yaml.safe_load(text)
    except yaml.YAMLError:
        return key.strip(), text


def _unknown_key(source: str, key: str, valid: list[str], where: str) -> ConfigError:
    """One line naming the unknown dotted ``key``, the closest valid name if one is close, and all of them."""
    section, dot, name = key.rpartition(".")
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"did you mean '{section}{dot}{close[0]}'? " if close else ""
    return ConfigError(f"{source}: unknown key '{key}'; {hint}valid keys in {where}: {sorted(valid)}.")


def _build(cls: type, raw: dict[str, Any], prefix: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise _unknown_key(source, prefix + unknown[0], list(hints), f"'{prefix[:-1]}'" if prefix else "the top level")
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = {} if value is None else value  # a section whose keys are all commented out
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{prefix}{name}' must be a mapping of keys, got {value!r}.")
            values[name] = _build(hint, value, f"{prefix}{name}.", source)
        else:
            values[name] = _coerce(value, hint, f"{prefix}{name}", source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``hint``.

    Also accepts an int or a number written as text (YAML reads ``1e-4`` as a string) for a float,
    and a single value for a list.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key}={value!r} is not valid; valid values: {', '.join(map(str, args))}.")
        return value
    if origin is list:
        items = [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value
        if not isinstance(items, list):
            raise ConfigError(f"{source}: {key} must be a list of {args[0].__name__}, got {value!r}.")
        return [_coerce(item, args[0], key, source) for item in items]
    if hint is float:
        return _coerce_float(value, key, source)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {key} must be {hint.__name__}, got {value!r} ({type(value).__name__}).")
    return value


def _coerce_float(value: Any, key: str, source: str) -> float:
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise ConfigError(f"{source}: {key} must be float, got {value!r} ({type(value).__name__}).")
    if not math.isfinite(number):
        raise ConfigError(f"{source}: {key}={value!r} must be a finite number.")
    return number
