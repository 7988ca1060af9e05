"""Two-stage training as one explicit loop: stage 1 ("pretrain", L1 on chroma), stage 2 ("gan", pix2pix).

Read it top to bottom: :meth:`Trainer.run` walks the stages, :meth:`Trainer.fit_stage` the epochs and
batches, :meth:`Trainer.step_pretrain` and :meth:`Trainer.step_gan` do one update each and return a
dict of floats, which is what gets logged. Checkpoints carry everything needed to resume exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from pix2color import color, metrics, viz
from pix2color.checkpoint import RESUME_KEYS, load_checkpoint, load_weights, save_checkpoint
from pix2color.config import Config, config_to_dict, save_config
from pix2color.data import build_datasets, collate_images
from pix2color.errors import ConfigError, DataError, TrainingStopped
from pix2color.losses import PerceptualLoss, build_gan_loss, l1_chroma
from pix2color.models.discriminator import build_discriminator
from pix2color.models.generator import build_generator
from pix2color.run_log import RunLog
from pix2color.runtime import Runtime, amp_dtype, any_rank, autocast, rng_state, set_rng_state
from pix2color.sampling import ResumableSampler, SeededDataset

STAGES = ("pretrain", "gan")
VAL_METRICS = ("psnr", "ssim", "colorfulness", "ciede2000")
TRAINING_ONLY_MODEL_KEYS = {"pretrained", "encoder_frozen_epochs", "encoder_lr_mult"}  # not the architecture


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; ``last.pt`` was written to ``checkpoint``."""

    def __init__(self, checkpoint: Path):
        super().__init__(str(checkpoint))
        self.checkpoint = checkpoint


def checkpoint_path(run_dir: Path, stage: str, name: str) -> Path:
    """RUN_DIR/checkpoints/<stage>/<name>.pt, e.g. checkpoints/gan/best.pt."""
    return run_dir / "checkpoints" / stage / f"{name}.pt"


class Trainer:
    """Trains the generator (and in stage 2 the discriminator) for one run folder."""

    def __init__(self, cfg: Config, run_dir: Path, runtime: Runtime):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.rt = runtime
        self.device = runtime.device
        self.amp = amp_dtype(self.device, cfg.train.amp, cfg.train.amp_dtype)
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        self.train_set, self.val_set = build_datasets(cfg.data, cfg.train.seed)
        self.collate = functools.partial(collate_images, size=cfg.data.size)
        self.log = RunLog(self.run_dir / "tb", runtime.is_main)
        self.stop_requested = False
        self.results: dict[str, dict[str, float]] = {}

    # ----------------------------------------------------------------- the run
    def run(self, stages: Sequence[str], resume: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
        """Train ``stages`` in order; ``resume`` (a loaded checkpoint) continues its own stage.

        Returns:
            The last validation metrics of each stage, e.g. ``{"gan": {"psnr": 22.1, ...}}``.
        """
        if self.rt.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.run_dir / "config.yaml")
            self.log.config(config_to_dict(self.cfg))
        self.stages = list(stages)
        first = self.stages.index(resume["stage"]) if resume else 0
        with _stop_signals(self):
            for stage in self.stages[first:]:
                self.fit_stage(stage, resume if resume and resume["stage"] == stage else None)
        final = self.results.get(self.stages[-1], {})
        if final:
            self.log.hparams(config_to_dict(self.cfg), final)
        self.log.close()
        return self.results

    def fit_stage(self, stage: str, resume: dict[str, Any] | None) -> None:
        """Build the stage's models and optimizers, restore or initialise them, then loop over epochs."""
        self.stage = stage
        self.build_stage(stage, from_checkpoint=resume is not None or stage == "gan")
        self.log.line(self.data_summary())
        if resume is not None:
            self.restore(resume)
        else:
            self.epoch, self.batch_in_epoch, self.step, self.best = 0, 0, 0, None
            if stage == "gan":
                self.init_generator_from_stage1()
        epochs = self.stage_cfg.epochs
        while self.epoch < epochs:
            started = time.perf_counter()
            train_means = self.train_epoch()
            val = self.validate() if self.should_validate(epochs) else {}
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.save("last")
            self.log_epoch(train_means, val, time.perf_counter() - started, epochs)
        self.log.flush()

    # ------------------------------------------------------------ construction
    @property
    def stage_cfg(self):
        return self.cfg.stage1 if self.stage == "pretrain" else self.cfg.stage2

    def build_stage(self, stage: str, from_checkpoint: bool) -> None:
        """Generator, EMA, optimizers, schedulers, grad scalers and (stage 2) discriminator and losses."""
        torch.manual_seed(self.cfg.train.seed + STAGES.index(stage))  # fresh weights do not depend on history
        model_cfg = self.cfg.model
        if from_checkpoint:  # the weights come from a checkpoint: never fetch pretrained ones
            model_cfg = dataclasses.replace(model_cfg, pretrained="none")
        self.g = build_generator(model_cfg, self.cfg.data.size).to(self.device, memory_format=self.memory_format)
        self.g_train = self.wrap(self.g)
        self.ema = self.build_ema()
        self.steps_per_epoch = self.count_steps_per_epoch()
        total_steps = max(1, self.stage_cfg.epochs * self.steps_per_epoch)
        self.scalers = {"g": self.grad_scaler()}
        if stage == "pretrain":
            groups = self.g.param_groups(self.cfg.stage1.lr, self.cfg.model.encoder_lr_mult)
            self.opt_g = torch.optim.Adam(groups, lr=self.cfg.stage1.lr, weight_decay=self.cfg.stage1.weight_decay)
            self.sched_g = self.pretrain_schedule(self.opt_g, total_steps)
            self.d = None
            return
        s2 = self.cfg.stage2
        self.d = build_discriminator(self.cfg.disc).to(self.device, memory_format=self.memory_format)
        self.d_train = self.wrap(self.d)
        betas = (s2.beta1, s2.beta2)
        self.opt_g = torch.optim.Adam(self.g.param_groups(s2.lr, self.cfg.model.encoder_lr_mult), lr=s2.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=s2.lr * s2.d_lr_ratio, betas=betas)
        self.sched_g, self.sched_d = (_pix2pix_schedule(opt, total_steps) for opt in (self.opt_g, self.opt_d))
        self.scalers["d"] = self.grad_scaler()
        self.gan_loss = build_gan_loss(s2.gan_loss)
        self.perceptual = self.build_perceptual_loss()

    def wrap(self, module: nn.Module) -> nn.Module:
        """SyncBatchNorm and DDP under torchrun, then torch.compile when asked; returns the training view."""
        if self.rt.distributed:
            if self.cfg.train.sync_batchnorm:
                if self.device.type != "cuda":
                    raise ConfigError(
                        "train.sync_batchnorm=true needs CUDA: PyTorch's SyncBatchNorm has no CPU kernel."
                    )
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            ids = [self.device.index] if self.device.type == "cuda" else None
            unused = self.cfg.model.encoder_frozen_epochs > 0
            module = DistributedDataParallel(module, device_ids=ids, find_unused_parameters=unused)
        return torch.compile(module) if self.cfg.train.compile else module

    def build_ema(self) -> AveragedModel | None:
        decay = self.cfg.train.ema_decay
        if decay == 0:
            return None
        return AveragedModel(self.g, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    def build_perceptual_loss(self) -> PerceptualLoss | None:
        if self.cfg.stage2.perceptual_weight == 0:
            return None
        pretrained = "none" if self.cfg.model.pretrained == "none" else "imagenet"
        return PerceptualLoss(pretrained=pretrained).to(self.device)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling is needed only for fp16; bf16 and fp32 get a disabled scaler."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)

    def pretrain_schedule(self, optimizer: torch.optim.Optimizer, total_steps: int):
        """One-cycle, or linear warm-up then cosine, over the whole of stage 1."""
        s1 = self.cfg.stage1
        if s1.schedule == "onecycle":
            max_lr = [group["lr"] for group in optimizer.param_groups]
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=max(s1.warmup_fraction, 1e-3)
            )
        warmup = max(1, int(total_steps * s1.warmup_fraction))
        return torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [
                torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup),
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup)),
            ],
            milestones=[warmup],
        )

    def train_loader(self) -> DataLoader:
        """This rank's shard of the training set from the current position, with per-sample seeds."""
        sampler = ResumableSampler(
            self.train_set, self.rt.world_size, self.rt.rank, shuffle=True, seed=self.cfg.train.seed, drop_last=False
        )
        sampler.set_position(self.epoch, self.batch_in_epoch * self.cfg.train.batch_size)
        return DataLoader(
            SeededDataset(self.train_set),
            batch_size=self.cfg.train.batch_size,
            sampler=sampler,
            num_workers=self.cfg.data.workers,
            collate_fn=self.collate,
            pin_memory=self.device.type == "cuda",
            drop_last=len(sampler) >= self.cfg.train.batch_size,
            generator=torch.Generator().manual_seed(self.cfg.train.seed),  # leaves the global RNG alone
        )

    def count_steps_per_epoch(self) -> int:
        per_rank = math.ceil(len(self.train_set) / self.rt.world_size)
        batch = self.cfg.train.batch_size
        steps = per_rank // batch if per_rank >= batch else 1
        cap = self.cfg.train.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    # ------------------------------------------------------------------ epochs
    def train_epoch(self) -> dict[str, float]:
        """One pass over this rank's shard; returns the epoch's mean of each logged value."""
        if self.stage == "pretrain":
            self.g.freeze_encoder(self.epoch < self.cfg.model.encoder_frozen_epochs)
        self.g_train.train()
        if self.d is not None:
            self.d_train.train()
        sums: dict[str, float] = {}
        count, skipped = 0, 0
        interval_images, interval_start = 0, time.perf_counter()
        bar = self.log.progress(self.steps_per_epoch - self.batch_in_epoch, f"{self.stage} {self.epoch + 1}")
        with bar:
            for rgb, n_bad in self.train_loader():
                if self.batch_in_epoch >= self.steps_per_epoch:
                    break
                skipped += n_bad
                self.batch_in_epoch += 1  # the position in the epoch counts batches of only bad images too
                if any_rank(len(rgb) == 0, self.rt):  # every rank skips together, or DDP's collectives drift
                    continue
                rgb = rgb.to(self.device, non_blocking=True)
                values = self.step_pretrain(rgb) if self.stage == "pretrain" else self.step_gan(rgb)
                self.step += 1
                interval_images += len(rgb) * self.rt.world_size
                self.check_finite(values)
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + value
                count += 1
                bar.update(1)
                bar.set_postfix({k: f"{v / count:.4f}" for k, v in sums.items() if k.startswith("loss")}, refresh=False)
                if self.step % self.cfg.train.log_every_steps == 0:
                    speed = interval_images / (time.perf_counter() - interval_start)
                    self.log_step(values, speed, skipped)
                    interval_images, interval_start = 0, time.perf_counter()
                self.handle_stop_and_save()
        return {name: total / max(count, 1) for name, total in sums.items()} | {"skipped_images": skipped}

    # ------------------------------------------------------------------- steps
    def step_pretrain(self, rgb: Tensor) -> dict[str, float]:
        """Stage 1: L1 between predicted and true chroma. rgb: (B, 3, S, S) uint8 on the device."""
        lightness, chroma = self.to_model_space(rgb)
        with autocast(self.device, self.amp):
            pred = self.g_train(lightness)
        loss = l1_chroma(pred.float(), chroma)
        grad_norm = self.update(loss, self.opt_g, self.g, "g")
        self.sched_g.step()
        self.update_ema()
        return {"loss_l1": loss.item(), "grad_norm_g": grad_norm}

    def step_gan(self, rgb: Tensor) -> dict[str, float]:
        """Stage 2, pix2pix: update D on real vs fake, then G on GAN + lambda_L1 * L1 (+ perceptual)."""
        s2 = self.cfg.stage2
        lightness, chroma = self.to_model_space(rgb)
        train_g = self.step >= s2.d_warmup_steps
        with autocast(self.device, self.amp), torch.set_grad_enabled(train_g):
            fake = (self.g_train if train_g else self.g)(lightness)
        with autocast(self.device, self.amp):
            real_logits = self.d_train(lightness, chroma)
            fake_logits = self.d_train(lightness, fake.detach())
        loss_d = self.gan_loss.discriminator(real_logits.float(), fake_logits.float())
        values = {
            "loss_d": loss_d.item(),
            "grad_norm_d": self.update(loss_d, self.opt_d, self.d, "d"),
            "d_real": self.gan_loss.score(real_logits.float()).mean().item(),
            "d_fake": self.gan_loss.score(fake_logits.float()).mean().item(),
        }
        if train_g:
            values |= self.generator_gan_update(rgb, lightness, chroma, fake)
            self.sched_g.step()
        self.sched_d.step()
        return values

    def generator_gan_update(self, rgb: Tensor, lightness: Tensor, chroma: Tensor, fake: Tensor) -> dict[str, float]:
        """G's half of a pix2pix step; D is frozen and called unwrapped (no DDP sync for its weights)."""
        s2 = self.cfg.stage2
        self.d.requires_grad_(False)
        with autocast(self.device, self.amp):
            logits = self.d(lightness, fake)
        loss_gan = self.gan_loss.generator(logits.float())
        loss_l1 = l1_chroma(fake.float(), chroma)
        loss_g = loss_gan + s2.lambda_l1 * loss_l1
        values = {"loss_g_gan": loss_gan.item(), "loss_l1": loss_l1.item()}
        if self.perceptual is not None:
            fake_rgb = color.l_chroma_to_rgb(lightness, fake, self.cfg.color.space)
            loss_p = self.perceptual(fake_rgb, rgb.float() / 255)
            loss_g = loss_g + s2.perceptual_weight * loss_p
            values["loss_perceptual"] = loss_p.item()
        values["loss_g"] = loss_g.item()
        values["grad_norm_g"] = self.update(loss_g, self.opt_g, self.g, "g")
        self.d.requires_grad_(True)
        self.update_ema()
        return values

    def to_model_space(self, rgb: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 RGB (B, 3, S, S) -> L (B, 1, S, S) and chroma (B, 2, S, S), normalised, in channels_last."""
        lightness, chroma = color.rgb_to_l_chroma(rgb, self.cfg.color.space)
        return lightness.contiguous(memory_format=self.memory_format), chroma

    def update(self, loss: Tensor, optimizer: torch.optim.Optimizer, model: nn.Module, key: str) -> float:
        """Backward, unscale, clip (or just measure) the gradient norm, step. Returns the norm."""
        scaler = self.scalers[key]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        max_norm = self.cfg.train.grad_clip or float("inf")
        norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_norm)
        scaler.step(optimizer)
        scaler.update()
        return float(norm)

    def update_ema(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.g)

    # -------------------------------------------------------------- validation
    def should_validate(self, epochs: int) -> bool:
        last = self.epoch + 1 == epochs
        return last or (self.epoch + 1) % self.cfg.train.val_every_epochs == 0

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Metrics over the val set and a comparison grid; the main process also writes best.pt."""
        if not self.rt.is_main:
            self.barrier()
            return {}
        model = self.eval_generator()
        model.eval()
        per_image: dict[str, list[Tensor]] = {}
        grid_columns: list[list[Tensor]] = [[], [], []]
        for rgb, _ in self.val_loader():
            if len(rgb) == 0:
                continue
            truth = rgb.to(self.device)
            pred, l1 = self.colorize(model, truth)
            values = metrics.image_metrics(pred, truth, VAL_METRICS) | {"l1": l1}
            values["target_colorfulness"] = metrics.colorfulness(truth)
            for name, value in values.items():
                per_image.setdefault(name, []).append(value.cpu())
            self.collect_grid(grid_columns, truth, pred)
        summary = self.summarize(per_image)
        self.save_grid(grid_columns)
        self.log.scalars({f"{self.stage}/val_{k}": v for k, v in summary.items()}, self.step)
        self.results[self.stage] = summary
        if self.is_better(summary):
            self.best = summary[self.cfg.train.best_metric]
            self.save("best")
        self.barrier()
        return summary

    def eval_generator(self) -> nn.Module:
        """The EMA weights when EMA is on, else the generator itself."""
        return self.ema.module if self.ema is not None else self.g

    def colorize(self, model: nn.Module, truth: Tensor) -> tuple[Tensor, Tensor]:
        """Predict from L alone. truth: (B, 3, S, S) uint8 -> (uint8 prediction, per-image chroma L1 (B,))."""
        space = self.cfg.color.space
        lightness, chroma = color.rgb_to_l_chroma(truth, space)
        with autocast(self.device, self.amp):
            pred_chroma = model(lightness.contiguous(memory_format=self.memory_format)).float()
        l1 = (pred_chroma - chroma).abs().mean(dim=(1, 2, 3))
        return color.to_uint8(color.l_chroma_to_rgb(lightness, pred_chroma, space)), l1

    def val_loader(self) -> DataLoader:
        return DataLoader(
            self.val_set,
            batch_size=self.cfg.train.batch_size,
            num_workers=min(self.cfg.data.workers, 1),
            collate_fn=self.collate,
        )

    def summarize(self, per_image: dict[str, list[Tensor]]) -> dict[str, float]:
        if not per_image:
            raise DataError("no validation image could be decoded (see the warnings above); fix or replace data.val.")
        values = {name: torch.cat(chunks) for name, chunks in per_image.items()}
        target_cf = values.pop("target_colorfulness")
        return metrics.summarize(values, target_cf)

    def is_better(self, summary: dict[str, float]) -> bool:
        name = self.cfg.train.best_metric
        if name not in summary:
            raise ConfigError(f"train.best_metric={name} is not computed in validation; valid: {sorted(summary)}.")
        if self.best is None:
            return True
        higher = metrics.HIGHER_IS_BETTER[name]
        return summary[name] > self.best if higher else summary[name] < self.best

    def collect_grid(self, columns: list[list[Tensor]], truth: Tensor, pred: Tensor) -> None:
        """Keep the first ``data.grid_images`` val images as gray | prediction | truth."""
        have = sum(len(chunk) for chunk in columns[0])
        take = max(0, self.cfg.data.grid_images - have)
        if take:
            for column, images in zip(columns, (viz.gray_rgb(truth[:take]), pred[:take], truth[:take]), strict=True):
                column.append(images.cpu())

    def save_grid(self, columns: list[list[Tensor]]) -> None:
        if not columns[0]:
            return
        grid = viz.comparison_grid([torch.cat(c) for c in columns], ["gray", f"{self.stage} prediction", "truth"])
        viz.save_grid(grid, self.run_dir / "grids" / f"{self.stage}_epoch_{self.epoch + 1}.png")
        self.log.image(f"{self.stage}/grid", grid, self.step)

    def barrier(self) -> None:
        if self.rt.distributed:
            torch.distributed.barrier()

    # ------------------------------------------------------- checkpoints, faults
    def save(self, name: str) -> None:
        """Write checkpoints/<stage>/<name>.pt atomically (main process only)."""
        if self.rt.is_main:
            save_checkpoint(self.state(), checkpoint_path(self.run_dir, self.stage, name))

    def state(self) -> dict[str, Any]:
        """Everything needed to continue: weights, optimizers, schedulers, scalers, EMA, position, RNG."""
        state: dict[str, Any] = {
            "config": config_to_dict(self.cfg),
            "stage": self.stage,
            "stages": self.stages,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "best": self.best,
            "metrics": self.results.get(self.stage, {}),
            "generator": self.g.state_dict(),
            "optimizers": {"g": self.opt_g.state_dict()},
            "schedulers": {"g": self.sched_g.state_dict()},
            "scalers": {key: scaler.state_dict() for key, scaler in self.scalers.items()},
            "rng": rng_state(),
        }
        if self.ema is not None:
            state["generator_ema"] = self.ema.module.state_dict()
            state["ema_count"] = int(self.ema.n_averaged)
        if self.d is not None:
            state["discriminator"] = self.d.state_dict()
            state["optimizers"]["d"] = self.opt_d.state_dict()
            state["schedulers"]["d"] = self.sched_d.state_dict()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of this stage: same step, learning rate and data order."""
        where = state.get("path", "the checkpoint")
        load_weights(self.g, state["generator"], "generator", where)
        if not set(RESUME_KEYS) <= set(state):
            raise ConfigError(
                f"--resume {where} holds generator weights only, not the optimizer and data state a resume "
                "needs; pass the run folder or a last.pt or best.pt that pix2color-train wrote."
            )
        self.opt_g.load_state_dict(state["optimizers"]["g"])
        self.sched_g.load_state_dict(state["schedulers"]["g"])
        if self.d is not None:
            load_weights(self.d, state["discriminator"], "discriminator", where)
            self.opt_d.load_state_dict(state["optimizers"]["d"])
            self.sched_d.load_state_dict(state["schedulers"]["d"])
        for key, scaler in self.scalers.items():
            scaler.load_state_dict(state["scalers"].get(key, {}))
        if self.ema is not None and "generator_ema" in state:
            load_weights(self.ema.module, state["generator_ema"], "EMA generator", where)
            self.ema.n_averaged.fill_(state["ema_count"])
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
        self.best = state["best"]
        set_rng_state(state["rng"])

    def init_generator_from_stage1(self) -> None:
        """Stage 2 starts from stage 1's best generator (its EMA weights when it kept them)."""
        source = self.cfg.stage2.init_from or checkpoint_path(self.run_dir, "pretrain", "best")
        if not Path(source).is_file():
            raise ConfigError(
                f"stage2.init_from: {source} does not exist; train stage 1 first (--stage pretrain) "
                "or pass --set stage2.init_from=PATH_TO_STAGE1_CHECKPOINT."
            )
        state = load_checkpoint(source)
        self.check_same_model(state["config"], source)
        load_weights(self.g, state.get("generator_ema", state["generator"]), "generator", source)
        if self.ema is not None:
            self.ema.module.load_state_dict(self.g.state_dict())

    def check_same_model(self, other: dict[str, Any], source: str | Path) -> None:
        """Stage 2 must predict the same colour space with the same generator as stage 1 did."""
        ours = config_to_dict(self.cfg)
        for section in ("color", "model"):
            for key, value in ours[section].items():
                theirs = other.get(section, {}).get(key)
                if key not in TRAINING_ONLY_MODEL_KEYS and theirs != value:
                    raise ConfigError(
                        f"stage2.init_from: {source} was trained with {section}.{key}={theirs!r}, this run has "
                        f"{value!r}; use the same setting or another stage 1 checkpoint."
                    )

    def check_finite(self, values: dict[str, float]) -> None:
        """Stop on a NaN or Inf loss without saving, so the last good checkpoint stays."""
        losses = {name: value for name, value in values.items() if name.startswith("loss")}
        bad = next((name for name, value in losses.items() if not math.isfinite(value)), None)
        if any_rank(bad is not None, self.rt):
            last = checkpoint_path(self.run_dir, self.stage, "last")
            kept = f"{last} still holds the last good weights" if last.exists() else "no checkpoint was written yet"
            raise TrainingStopped(
                f"{self.stage} step {self.step}: {bad or 'a loss on another rank'} is "
                f"{values.get(bad, 'not finite')}; stopped without saving, {kept}; lower the learning rate "
                "or try --set train.amp=false, then --resume."
            )

    def handle_stop_and_save(self) -> None:
        """Save last.pt every ``save_every_steps``; on SIGINT/SIGTERM save it and stop."""
        stop = any_rank(self.stop_requested, self.rt)
        if stop or self.step % self.cfg.train.save_every_steps == 0:
            self.save("last")
        if stop:
            raise Interrupted(checkpoint_path(self.run_dir, self.stage, "last"))

    # ----------------------------------------------------------------- logging
    def data_summary(self) -> str:
        unreadable = self.train_set.unreadable + self.val_set.unreadable
        skipped = f"; skipped {unreadable} unreadable files (named in the warnings above)" if unreadable else ""
        return (
            f"{self.stage}: {len(self.train_set)} training images, {len(self.val_set)} validation images, "
            f"{self.steps_per_epoch} steps of {self.cfg.train.batch_size} per epoch{skipped}"
        )

    def log_step(self, values: dict[str, float], images_per_s: float, skipped: int) -> None:
        scalars = {f"{self.stage}/{name}": value for name, value in values.items()}
        for i, group in enumerate(self.opt_g.param_groups):
            scalars[f"{self.stage}/lr_g_{group.get('name', i)}"] = group["lr"]
        if self.d is not None:
            scalars[f"{self.stage}/lr_d"] = self.opt_d.param_groups[0]["lr"]
        scalars[f"{self.stage}/images_per_s"] = images_per_s
        scalars[f"{self.stage}/skipped_images"] = skipped
        self.log.scalars(scalars, self.step)

    def log_epoch(self, train: dict[str, float], val: dict[str, float], seconds: float, epochs: int) -> None:
        self.log.scalars({f"{self.stage}/epoch_seconds": seconds}, self.step)
        losses = "  ".join(f"{k} {v:.4f}" for k, v in train.items() if k.startswith("loss") or k.startswith("d_"))
        checks = "  ".join(f"{k} {v:.2f}" for k, v in val.items())
        skipped = f"  skipped {int(train.get('skipped_images', 0))} bad images" if train.get("skipped_images") else ""
        self.log.line(
            f"{self.stage} epoch {self.epoch}/{epochs}  {losses}  |  val {checks or '-'}  |  {seconds:.0f} s{skipped}"
        )


def _pix2pix_schedule(optimizer: torch.optim.Optimizer, total_steps: int):
    """Constant learning rate for the first half, then linear decay to zero (pix2pix's schedule)."""
    half = total_steps / 2
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, max(0.0, (total_steps - step) / half)))


class _stop_signals:
    """Turns SIGINT/SIGTERM into ``trainer.stop_requested`` for the duration of a run."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def __enter__(self):
        self.previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in self.previous:
            signal.signal(sig, self._request_stop)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _request_stop(self, signum, frame):
        self.trainer.stop_requested = True
