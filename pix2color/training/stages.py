"""The stages: each builds its modules and optimizers from the config, takes one step on a batch and gives
and takes its state. The loop (:mod:`.loop`) runs any of them the same way, through the interface of
:class:`~pix2color.training.protocol.Stage`.

A new recipe is one more class here (or a subclass of one, anywhere) and an entry in :data:`STAGES`, whose
order is the order a run trains them in.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pix2color import color, metrics
from pix2color.checkpoint import check_resume_state, checkpoint_path, load_checkpoint, load_weights
from pix2color.config import (
    TRAINING_ONLY,
    Config,
    config_from_dict,
    config_to_dict,
    marked_keys,
    rgb_term_weights,
    stage2_ema_decay,
)
from pix2color.errors import ConfigError
from pix2color.hints import training_hints
from pix2color.losses import (
    L1ChromaLoss,
    PerceptualLoss,
    RebalancedBinsLoss,
    build_gan_loss,
    ciede2000_loss,
    colorfulness_gap,
    l1_chroma,
)
from pix2color.models.discriminator import build_discriminator
from pix2color.runtime import autocast
from pix2color.sampling import sample_seed
from pix2color.training import schedules
from pix2color.training.context import StageContext
from pix2color.training.protocol import Progress, Stage

HINT_SEED_OFFSET = 7919  # keeps the hints' seeds apart from the data sampler's (sampling.sample_seed)


class GeneratorStage:
    """What every stage has: the generator, its training view, its EMA, its optimizer and grad scaler."""

    name = ""
    title = ""
    section = ""
    uses_checkpoint = False
    charts: dict[str, list[str]] = {}  # chart title -> step values drawn on it, in TensorBoard's Custom Scalars
    best_metric_key = "train.best_metric"  # the config key that names best_metric

    def __init__(self, ctx: StageContext, resuming: bool, optimizer_g: partial):
        self.ctx = ctx
        self.g = ctx.generator(weights_from_checkpoint=resuming or self.uses_checkpoint)
        self.g_train = ctx.wrap(self.g)
        self.ema = ctx.ema(self.g, self.ema_decay)
        lr = getattr(ctx.cfg, self.section).lr
        model = ctx.cfg.model
        self.opt_g = optimizer_g(self.g.param_groups(lr, model.encoder_lr_mult, model.hints_lr_mult), lr=lr)
        self.scaler_g = ctx.grad_scaler()
        self.hint_rng = torch.Generator(ctx.device)

    def hints(self, chroma: Tensor, progress: Progress) -> Tensor | None:
        """Hints drawn from the true chroma (B, 2, S, S) for a model with ``model.hints`` (else None), from a
        generator seeded by the run seed, the step and the rank, so a resumed run draws the same ones."""
        if not self.ctx.cfg.model.hints:
            return None
        seed = sample_seed(self.ctx.cfg.train.seed + HINT_SEED_OFFSET, progress.step, self.ctx.runtime.rank)
        self.hint_rng.manual_seed(seed)
        return training_hints(chroma, self.ctx.cfg.hints, self.hint_rng)

    def initialize(self, run_dir: Path, previous: str | None) -> None:
        """Weights for a fresh start: the generator as built."""

    def crop_size(self, fraction: float) -> int:
        """The side of the training crops at ``fraction`` of the stage: ``data.size``."""
        return self.ctx.cfg.data.size

    def start_epoch(self, epoch: int) -> None:
        self.g_train.train()

    def eval_generator(self) -> nn.Module:
        """The EMA weights when EMA is on, else the generator itself."""
        return self.ema.module if self.ema is not None else self.g

    @property
    def ema_decay(self) -> float:
        return self.ctx.cfg.train.ema_decay

    @property
    def best_metric(self) -> str:
        section, key = self.best_metric_key.split(".")
        return getattr(getattr(self.ctx.cfg, section), key)

    def scores(self, summary: dict[str, float], start: dict[str, float]) -> dict[str, float]:
        """Values that weigh a validation ``summary`` against the one of the stage's start: none here."""
        return {}

    def update_ema(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.g)

    def schedule_values(self) -> dict[str, float]:
        return {f"lr_g_{group.get('name', i)}": group["lr"] for i, group in enumerate(self.opt_g.param_groups)}

    def state_dict(self) -> dict[str, Any]:
        state = {
            "generator": self.g.state_dict(),
            "optimizers": {"g": self.opt_g.state_dict()},
            "scalers": {"g": self.scaler_g.state_dict()},
        }
        if self.ema is not None:
            state |= {"generator_ema": self.ema.module.state_dict(), "ema_count": int(self.ema.n_averaged)}
        return state

    def load_state_dict(self, state: dict[str, Any], where: str) -> None:
        load_weights(self.g, state["generator"], "generator", where)  # first: weights of another model say so
        check_resume_state(state, where, keys=("optimizers", "scalers"))
        self.opt_g.load_state_dict(state["optimizers"]["g"])
        self.scaler_g.load_state_dict(state["scalers"]["g"])
        if self.ema is not None and "generator_ema" in state:
            load_weights(self.ema.module, state["generator_ema"], "EMA generator", where)
            self.ema.n_averaged.fill_(state["ema_count"])


class PretrainStage(GeneratorStage):
    """Stage 1: the generator alone, on its head's loss (:data:`PRETRAIN_LOSSES`: L1 on chroma, or rebalanced
    cross-entropy on chroma bins); one-cycle or cosine learning rate."""

    name = "pretrain"
    title = "stage 1 (L1)"
    section = "stage1"

    def __init__(self, ctx: StageContext, resuming: bool):
        s1 = ctx.cfg.stage1
        super().__init__(ctx, resuming, partial(torch.optim.Adam, weight_decay=s1.weight_decay))
        self.epoch = 0
        self.schedule = partial(schedules.STAGE1_SCHEDULES[s1.schedule], warmup=s1.warmup_fraction)
        self.loss = ctx.on_device(PRETRAIN_LOSSES[ctx.cfg.model.chroma_head](self.g, ctx.cfg))

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        super().start_epoch(epoch)

    def encoder_frozen(self, fraction: float) -> bool:
        """Whether the step at ``fraction`` of the stage trains the decoder alone: within the first
        ``model.encoder_frozen_epochs`` epochs or the first ``model.encoder_frozen_share`` of the stage."""
        model = self.ctx.cfg.model
        return self.epoch < model.encoder_frozen_epochs or fraction < model.encoder_frozen_share

    def crop_size(self, fraction: float) -> int:
        """``stage1.small_size`` for the first ``stage1.small_share`` of the stage when set, then ``data.size``."""
        s1 = self.ctx.cfg.stage1
        return s1.small_size if s1.small_size and fraction < s1.small_share else super().crop_size(fraction)

    def step(self, rgb: Tensor, progress: Progress) -> dict[str, Tensor]:
        """One update on the head's loss. rgb: (B, 3, S, S) uint8 on the device."""
        schedules.set_learning_rate(self.opt_g, self.schedule(progress.fraction))
        if self.encoder_frozen(progress.fraction) != self.g.encoder_frozen:
            self.g.freeze_encoder(not self.g.encoder_frozen)
        lightness, chroma = self.ctx.to_model_space(rgb)
        hints = self.hints(chroma, progress)
        with autocast(self.ctx.device, self.ctx.amp):
            output = self.g_train(lightness, decode=False, hints=hints)
        loss = self.loss(output.float(), chroma)
        grad_norm = self.ctx.update(loss, self.opt_g, self.g, self.scaler_g)
        self.update_ema()
        return {self.loss.log_name: loss.detach(), "grad_norm_g": grad_norm}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"loss": self.loss.state_dict()}

    def load_state_dict(self, state: dict[str, Any], where: str) -> None:
        super().load_state_dict(state, where)
        load_weights(self.loss, state.get("loss", {}), "stage-1 loss state", where)  # none before the bins head


# G's optional stage-2 terms on RGB images: name -> a builder of the loss from the stage's context. Each loss
# takes the fake and the true (B, 3, H, W) RGB in [0, 1] and returns a scalar. A term's weight is the stage2
# field marked with its name (config.RGB_TERM); it is on when that is above 0. A new term is one more entry
# and a marked weight.
RGB_TERMS: dict[str, Callable[[StageContext], Callable[[Tensor, Tensor], Tensor]]] = {
    "colorfulness": lambda ctx: colorfulness_gap,
    "ciede2000": lambda ctx: ciede2000_loss,
    "perceptual": lambda ctx: PerceptualLoss("none" if ctx.cfg.model.pretrained == "none" else "imagenet").to(
        ctx.device
    ),
}


class Pix2PixStage(GeneratorStage):
    """Stage 2, pix2pix: D on real vs fake, then G on gan_weight * GAN + lambda_l1 * L1 + the weighted
    :data:`RGB_TERMS` that are on (colorfulness gap, CIEDE2000, perceptual).

    D trains alone for ``d_warmup_steps``; G's learning-rate schedule starts when G does, so it still
    runs its whole course. The GAN weight can ramp up over G's first ``gan_ramp_steps`` steps.
    """

    name = "gan"
    title = "stage 2 (pix2pix GAN)"
    section = "stage2"
    uses_checkpoint = True
    best_metric_key = "stage2.best_metric"
    charts = {
        "D(real) and D(fake): near 1 and 0 for long, D overpowers G; both near 0.5, D learns nothing": [
            "d_real",
            "d_fake",
        ],
        "G's loss by part (unweighted) and the GAN weight": [
            "loss_g_gan",
            "loss_l1",
            *(f"loss_{name}" for name in RGB_TERMS),
            "gan_weight",
        ],
    }

    def __init__(self, ctx: StageContext, resuming: bool):
        s2 = ctx.cfg.stage2
        adam = partial(torch.optim.Adam, betas=(s2.beta1, s2.beta2))
        super().__init__(ctx, resuming, adam)
        self.d = ctx.on_device(build_discriminator(ctx.cfg.disc))
        self.d_train = ctx.wrap(self.d)
        self.opt_d = adam(self.d.parameters(), lr=s2.lr * s2.d_lr_ratio)
        self.scaler_d = ctx.grad_scaler()
        self.gan_loss = build_gan_loss(s2.gan_loss, s2.real_label)
        self.rgb_terms = self.build_rgb_terms()
        self.schedule_g = partial(schedules.STAGE2_SCHEDULES[s2.g_schedule], decay_start=s2.decay_start)
        self.schedule_d = partial(schedules.STAGE2_SCHEDULES[s2.d_schedule], decay_start=s2.decay_start)
        self.g_started_at: float | None = None  # the stage's progress at G's first step
        self.gan_weight = 0.0

    def build_rgb_terms(self) -> dict[str, tuple[float, Callable[[Tensor, Tensor], Tensor]]]:
        """The :data:`RGB_TERMS` that are on.

        Returns:
            name -> (weight, loss of the fake and the true (B, 3, H, W) RGB in [0, 1]).
        """
        weights = rgb_term_weights(self.ctx.cfg.stage2)
        return {name: (weights[name], build(self.ctx)) for name, build in RGB_TERMS.items() if name in weights}

    def initialize(self, run_dir: Path, previous: str | None) -> None:
        """Start from the previous stage's best generator: ``stage2.init_from``, else this run's
        ``checkpoints/<previous>/best.pt``."""
        init_from = self.ctx.cfg.stage2.init_from
        if not init_from and previous is None:
            raise ConfigError(
                f"stage2.init_from is empty and {self.name} is the first stage; pass --set stage2.init_from=PATH."
            )
        source = Path(init_from) if init_from else checkpoint_path(run_dir, previous, "best")
        if not source.is_file():
            raise ConfigError(
                f"stage2.init_from: {source} does not exist; train the stage before it first "
                f"(--stage {previous}) or pass --set stage2.init_from=PATH_TO_ITS_CHECKPOINT."
            )
        state = load_checkpoint(source)
        check_same_model(config_to_dict(self.ctx.cfg), state["config"], source)
        load_weights(self.g, state.get("generator_ema", state["generator"]), "generator", source)
        if self.ema is not None:
            self.ema.module.load_state_dict(self.g.state_dict())

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self.d_train.train()

    def step(self, rgb: Tensor, progress: Progress) -> dict[str, Tensor]:
        """One D update, then (after D's warm-up) one G update. rgb: (B, 3, S, S) uint8 on the device."""
        schedules.set_learning_rate(self.opt_d, self.schedule_d(progress.fraction))
        lightness, chroma = self.ctx.to_model_space(rgb)
        train_g = progress.step >= self.ctx.cfg.stage2.d_warmup_steps
        hints = self.hints(chroma, progress)
        with autocast(self.ctx.device, self.ctx.amp), torch.set_grad_enabled(train_g):
            fake = (self.g_train if train_g else self.g)(lightness, hints=hints)
        d_hints = hints if self.ctx.cfg.disc.hints else None  # what D reads besides L and the chroma
        values = self.discriminator_step(lightness, chroma, fake.detach(), d_hints)
        if train_g:
            values |= self.generator_step(rgb, lightness, chroma, fake, progress, d_hints)
        return values

    def discriminator_step(
        self, lightness: Tensor, chroma: Tensor, fake: Tensor, hints: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One D update on the true and the fake chroma (and ``hints`` for a D built with ``disc.hints``)."""
        with autocast(self.ctx.device, self.ctx.amp):
            real_logits = self.d_train(lightness, chroma, hints).float()
            fake_logits = self.d_train(lightness, fake, hints).float()
        loss_d = self.gan_loss.discriminator(real_logits, fake_logits)
        return {
            "loss_d": loss_d.detach(),
            "grad_norm_d": self.ctx.update(loss_d, self.opt_d, self.d, self.scaler_d),
            "d_real": self.gan_loss.score(real_logits.detach()).mean(),
            "d_fake": self.gan_loss.score(fake_logits.detach()).mean(),
        }

    def generator_step(
        self, rgb: Tensor, lightness: Tensor, chroma: Tensor, fake: Tensor, progress: Progress, hints: Tensor | None
    ) -> dict[str, Tensor]:
        """G's half: its schedules, then one update on :meth:`generator_losses` (``hints``: what D reads)."""
        s2 = self.ctx.cfg.stage2
        if self.g_started_at is None:
            self.g_started_at = progress.fraction
        g_progress = schedules.rescaled(progress.fraction, self.g_started_at)
        schedules.set_learning_rate(self.opt_g, self.schedule_g(g_progress))
        self.gan_weight = s2.gan_weight * schedules.ramp(progress.step - s2.d_warmup_steps, s2.gan_ramp_steps)
        self.d.requires_grad_(False)
        parts, loss_g = self.generator_losses(rgb, lightness, chroma, fake, hints)
        grad_norm = self.ctx.update(loss_g, self.opt_g, self.g, self.scaler_g)
        self.d.requires_grad_(True)
        self.update_ema()
        parts = {name: value.detach() for name, value in parts.items()}
        return parts | {"loss_g": loss_g.detach(), "grad_norm_g": grad_norm}

    def generator_losses(
        self, rgb: Tensor, lightness: Tensor, chroma: Tensor, fake: Tensor, hints: Tensor | None = None
    ) -> tuple[dict[str, Tensor], Tensor]:
        """G's objective: (its unweighted parts by name, the weighted sum). D is frozen and called unwrapped
        (no DDP sync for its weights), with ``hints`` when it reads them. A variant overrides this to add or change
        terms."""
        s2 = self.ctx.cfg.stage2
        with autocast(self.ctx.device, self.ctx.amp):
            logits = self.d(lightness, fake, hints)
        parts = {"loss_g_gan": self.gan_loss.generator(logits.float()), "loss_l1": l1_chroma(fake.float(), chroma)}
        loss_g = self.gan_weight * parts["loss_g_gan"] + s2.lambda_l1 * parts["loss_l1"]
        if self.rgb_terms:
            fake_rgb = color.l_chroma_to_rgb(lightness, fake.float(), self.ctx.cfg.color.space)
            true_rgb = rgb.float() / 255
            for name, (weight, loss) in self.rgb_terms.items():
                parts[f"loss_{name}"] = loss(fake_rgb, true_rgb)
                loss_g = loss_g + weight * parts[f"loss_{name}"]
        return parts, loss_g

    @property
    def ema_decay(self) -> float:
        return stage2_ema_decay(self.ctx.cfg)

    def scores(self, summary: dict[str, float], start: dict[str, float]) -> dict[str, float]:
        """``color_fidelity``: colour and fidelity against stage 1's weights (see :func:`metrics.color_fidelity`)."""
        return {"color_fidelity": metrics.color_fidelity(summary, start, self.ctx.cfg.stage2.color_weight)}

    def schedule_values(self) -> dict[str, float]:
        return super().schedule_values() | {"lr_d": self.opt_d.param_groups[0]["lr"], "gan_weight": self.gan_weight}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["discriminator"] = self.d.state_dict()
        state["optimizers"]["d"] = self.opt_d.state_dict()
        state["scalers"]["d"] = self.scaler_d.state_dict()
        return state | {"g_started_at": self.g_started_at}

    def load_state_dict(self, state: dict[str, Any], where: str) -> None:
        super().load_state_dict(state, where)
        load_weights(self.d, state["discriminator"], "discriminator", where)
        self.opt_d.load_state_dict(state["optimizers"]["d"])
        self.scaler_d.load_state_dict(state["scalers"]["d"])
        self.g_started_at = state["g_started_at"]


def check_same_model(ours: dict[str, Any], theirs: dict[str, Any], source: str | Path) -> None:
    """Stage 2 must predict the same colour space with the same generator as stage 1 did."""
    theirs = config_to_dict(config_from_dict(theirs, str(source)))  # keys added since it was written: defaults
    training_only = marked_keys(TRAINING_ONLY)
    for section in ("color", "model"):
        for key, value in ours[section].items():
            other = theirs.get(section, {}).get(key)
            if f"{section}.{key}" not in training_only and other != value:
                raise ConfigError(
                    f"stage2.init_from: {source} was trained with {section}.{key}={other!r}, this run has "
                    f"{value!r}; use the same setting or another stage 1 checkpoint."
                )


# model.chroma_head -> stage 1's loss, built from the generator (whose head it trains) and the config
PRETRAIN_LOSSES: dict[str, Callable[[nn.Module, Config], nn.Module]] = {
    "regression": lambda generator, cfg: L1ChromaLoss(),
    "bins": lambda generator, cfg: RebalancedBinsLoss(generator.head.bins, cfg.stage1.prior_mix),
}

# Every stage by name, in the order a run trains them (and a resume looks for their last.pt, newest first).
STAGES: dict[str, type[Stage]] = {stage.name: stage for stage in (PretrainStage, Pix2PixStage)}
