"""The training loop every stage shares: epochs, batches, the time budget, logging, checkpoints, signals, DDP.

Read it top to bottom: :meth:`Loop.run` walks the stages, :meth:`Loop.fit_stage` the epochs,
:meth:`Loop.train_epoch` the batches. Each batch is one ``stage.step``, which returns tensors; the host
reads them once per log interval (:meth:`Loop.flush`), where they are checked for NaN and logged. The loop
finds a stage by name in :data:`~pix2color.training.stages.STAGES` and knows nothing else about it than
:class:`~pix2color.training.protocol.Stage` says.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pix2color import viz
from pix2color.checkpoint import check_resume_state, checkpoint_path, save_checkpoint
from pix2color.config import Config, config_to_dict, save_config
from pix2color.data import build_datasets, collate_images
from pix2color.errors import ConfigError, TrainingStopped
from pix2color.metric_names import COLOR_BESIDE_FIDELITY, is_better
from pix2color.model_files import inference_checkpoint
from pix2color.run_log import RunLog
from pix2color.runtime import Runtime, any_rank, rng_state, set_rng_state
from pix2color.sampling import ResumableSampler, SeededDataset
from pix2color.training.budget import Budget, stage_seconds
from pix2color.training.context import StageContext
from pix2color.training.protocol import Progress, Stage
from pix2color.training.stages import STAGES
from pix2color.training.validation import val_colorizer, validate


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; ``last.pt`` was written to ``checkpoint``."""

    def __init__(self, checkpoint: Path):
        super().__init__(str(checkpoint))
        self.checkpoint = checkpoint


@dataclasses.dataclass
class Position:
    """Where the current stage stands: what last.pt records of the run beside the stage's own state."""

    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch done, batches of only bad images included
    step: int = 0
    best: float | None = None  # the best value of the stage's best_metric so far
    finished: bool = False
    start_metrics: dict[str, float] | None = None  # val metrics of the weights the stage started from

    def state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Position:
        """The position a last.pt holds (``start_metrics`` is absent in one written before stage scores)."""
        fields = {field.name: state[field.name] for field in dataclasses.fields(cls) if field.name != "start_metrics"}
        return cls(**fields, start_metrics=state.get("start_metrics"))


class Loop:
    """Trains ``stages`` (names in STAGES) in order for one run folder."""

    def __init__(self, cfg: Config, run_dir: Path, runtime: Runtime, stages: list[str]):
        self.cfg, self.run_dir, self.rt, self.stages = cfg, Path(run_dir), runtime, list(stages)
        self.ctx = StageContext(cfg, runtime)
        self.train_set, self.val_set = build_datasets(cfg.data, cfg.train.seed)
        self.log = RunLog(self.run_dir / "tb", runtime.is_main)
        self.stop_requested = False
        self.results: dict[str, dict[str, float]] = {}
        # the current stage, set by start_stage
        self.stage: Stage | None = None
        self.pos = Position()
        self.budget = Budget(None)
        self.epochs = self.steps_per_epoch = 0
        self.last_crop_size = cfg.data.size  # of the last step: a resume may validate before a step of its own
        # the current epoch's step values, set by train_epoch
        self.epoch_sums: dict[str, list[float]] = {}
        self.skipped = 0
        self.interval = Interval()

    # ----------------------------------------------------------------- the run
    def run(self, resume: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
        """Train every stage; ``resume`` (a loaded last.pt) continues its own stage.

        Returns:
            The last validation metrics of each stage, e.g. ``{"gan": {"psnr": 22.1, ...}}``.
        """
        if self.rt.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.run_dir / "config.yaml")
            self.log.config(config_to_dict(self.cfg))
            self.log.charts({name: stage_charts(STAGES[name]) for name in self.stages})
        first = self.stages.index(resume["stage"]) if resume else 0
        with _stop_signals(self):
            for name in self.stages[first:]:
                self.fit_stage(name, resume if resume and resume["stage"] == name else None)
        final = self.results.get(self.stages[-1], {})
        if final:
            self.log.hparams(config_to_dict(self.cfg), final)
        self.log.close()
        return self.results

    def fit_stage(self, name: str, resume: dict[str, Any] | None) -> None:
        """Build the stage, start or restore it, then run epochs until its epochs or its time are spent."""
        self.start_stage(name, resume)
        self.log.line(self.data_summary())
        pos = self.pos
        while not pos.finished:
            started = time.perf_counter()
            train_means = self.train_epoch()
            pos.finished = pos.epoch + 1 >= self.epochs or self.out_of_time()
            due = pos.finished or (pos.epoch + 1) % self.cfg.train.val_every_epochs == 0
            val = self.validate() if due else {}
            pos.epoch, pos.batch_in_epoch = pos.epoch + 1, 0
            self.save_last()
            self.log_epoch(train_means, val, time.perf_counter() - started)
        self.log.flush()

    def start_stage(self, name: str, resume: dict[str, Any] | None) -> None:
        torch.manual_seed(self.cfg.train.seed + list(STAGES).index(name))  # fresh weights do not depend on history
        self.stage = STAGES[name](self.ctx, resuming=resume is not None)
        self.epochs = getattr(self.cfg, self.stage.section).epochs
        self.steps_per_epoch = self.count_steps_per_epoch()
        seconds = stage_seconds(self.cfg.train.minutes, self.time_shares(), self.stages.index(name))
        if resume is None:
            self.pos = Position()
            self.stage.initialize(self.run_dir, self.previous_stage(name))
            self.pos.start_metrics = self.measure_start()
            self.offer_start()
            self.budget = Budget(seconds)
        else:
            self.restore(resume)
            self.budget = Budget(seconds, resume["spent_seconds"])
        self.last_crop_size = self.stage.crop_size(self.progress())

    def time_shares(self) -> list[float | None]:
        """Each stage's own share of ``train.minutes`` (its section's ``share``), or None, in run order."""
        return [getattr(getattr(self.cfg, STAGES[name].section), "share", None) for name in self.stages]

    @staticmethod
    def previous_stage(name: str) -> str | None:
        """The stage before ``name`` in :data:`STAGES`, whose best.pt a stage that uses a checkpoint starts from."""
        order = list(STAGES)
        index = order.index(name)
        return order[index - 1] if index else None

    # ------------------------------------------------------------------ epochs
    def train_epoch(self) -> dict[str, float]:
        """One pass over this rank's shard, or until the time is spent; returns the epoch's mean of each value."""
        self.stage.start_epoch(self.pos.epoch)
        self.epoch_sums, self.skipped, self.interval = {}, 0, Interval()
        with self.log.progress(self.steps_per_epoch - self.pos.batch_in_epoch, self.stage.name) as bar:
            resized = True
            while resized:
                resized = self.train_batches(self.stage.crop_size(self.progress()), bar)
            self.flush(bar)
        means = {name: math.fsum(parts) / len(parts) for name, parts in self.epoch_sums.items()}
        return means | {"skipped_images": self.skipped}

    def train_batches(self, size: int, bar) -> bool:
        """Steps on ``size``-pixel crops until the epoch or the time ends; True when the stage's crop size
        changes first (progressive resizing), so that the rest of the epoch continues at the new size."""
        note = f" at {size} px" if size != self.cfg.data.size else ""
        pos = self.pos
        bar.set_description(f"{self.stage.name} {pos.epoch + 1}{note}")
        for rgb, n_bad in self.train_loader(size):
            if pos.batch_in_epoch >= self.steps_per_epoch:
                return False
            self.skipped += n_bad
            pos.batch_in_epoch += 1
            if any_rank(len(rgb) == 0, self.rt):  # every rank skips together, or DDP's collectives drift
                continue
            rgb = rgb.to(self.ctx.device, non_blocking=True)
            self.last_crop_size = size
            values = self.stage.step(rgb, Progress(pos.step, self.progress()))
            pos.step += 1
            self.interval.add(pos.step, values, len(rgb) * self.rt.world_size)
            bar.update(1)
            if self.after_step(bar):
                return False
            if self.stage.crop_size(self.progress()) != size:
                self.flush(bar)  # the interval's images per second belong to the old size
                return True
        return False

    def after_step(self, bar) -> bool:
        """Log every ``log_every_steps``, save every ``save_every_steps``, stop on a signal; True when out of time."""
        stop = any_rank(self.stop_requested, self.rt)
        save = stop or self.pos.step % self.cfg.train.save_every_steps == 0
        if save or self.pos.step % self.cfg.train.log_every_steps == 0:
            self.flush(bar)  # before any save: a NaN must never reach last.pt
        if save:
            self.save_last()
        if stop:
            raise Interrupted(checkpoint_path(self.run_dir, self.stage.name, "last"))
        return self.out_of_time()

    def flush(self, bar) -> None:
        """Read the interval's values from the device (one sync), stop on NaN, log their means."""
        if not self.interval.steps:
            return
        rows, images_per_s = self.interval.read()
        self.interval = Interval()
        self.check_finite(rows)
        means = {}
        for name in {name for _, values in rows for name in values}:
            parts = [values[name] for _, values in rows if name in values]
            self.epoch_sums.setdefault(name, []).extend(parts)
            means[name] = math.fsum(parts) / len(parts)
        bar.set_postfix({k: f"{v:.4f}" for k, v in means.items() if k.startswith("loss")}, refresh=False)
        extra = {"images_per_s": images_per_s, "skipped_images": self.skipped, "crop_size": self.last_crop_size}
        scalars = means | self.stage.schedule_values() | extra
        self.log.scalars({f"{self.stage.name}/{k}": v for k, v in scalars.items()}, self.pos.step)

    def progress(self) -> float:
        """The stage's progress in [0, 1]: its share of steps or of time done, whichever is further."""
        steps = self.pos.step / max(1, self.epochs * self.steps_per_epoch)
        return min(1.0, max(steps, self.budget.fraction()))

    def out_of_time(self) -> bool:
        return any_rank(self.budget.exhausted(), self.rt)

    def train_loader(self, size: int) -> DataLoader:
        """This rank's shard of the training set from the current position, with per-sample seeds, as
        ``size``-pixel crops."""
        sampler = ResumableSampler(
            self.train_set, self.rt.world_size, self.rt.rank, shuffle=True, seed=self.cfg.train.seed, drop_last=False
        )
        sampler.set_position(self.pos.epoch, self.pos.batch_in_epoch * self.cfg.train.batch_size)
        return DataLoader(
            SeededDataset(self.train_set.resized(size)),
            batch_size=self.cfg.train.batch_size,
            sampler=sampler,
            num_workers=self.cfg.data.workers,
            collate_fn=functools.partial(collate_images, size=size),
            pin_memory=self.ctx.device.type == "cuda",
            drop_last=len(sampler) >= self.cfg.train.batch_size,
            generator=torch.Generator().manual_seed(self.cfg.train.seed),  # leaves the global RNG alone
        )

    def count_steps_per_epoch(self) -> int:
        per_rank = math.ceil(len(self.train_set) / self.rt.world_size)
        batch = self.cfg.train.batch_size
        steps = per_rank // batch if per_rank >= batch else 1
        cap = self.cfg.train.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    # -------------------------------------------------------------- validation
    def validate(self) -> dict[str, float]:
        """Val metrics and grid through the Colorizer, with the stage's scores against its start; the main
        process also writes best.pt when they are best."""
        if not self.rt.is_main:
            self.barrier()
            return {}
        pos = self.pos
        summary = self.measure(f"epoch_{pos.epoch + 1}")
        if pos.start_metrics is not None:
            summary |= self.stage.scores(summary, pos.start_metrics)
        self.log.scalars({f"{self.stage.name}_val/{k}": v for k, v in summary.items()}, pos.step)
        self.results[self.stage.name] = summary
        if self.is_better(summary) and self.may_be_best():
            pos.best = summary[self.stage.best_metric]
            self.save_best(summary)
        self.barrier()
        return summary

    def measure_start(self) -> dict[str, float] | None:
        """Val metrics of the weights a stage starts from (another stage's), the reference of its scores.

        Logged at step 0, beside the epochs' validations; None for a stage that starts from scratch.
        """
        if not self.stage.uses_checkpoint:
            return None
        summary = self.measure("start") if self.rt.is_main else None
        if summary is not None:
            self.log.scalars({f"{self.stage.name}_val/{k}": v for k, v in summary.items()}, 0)
            self.log.line(f"{self.stage.name} starts at  val " + "  ".join(f"{k} {v:.2f}" for k, v in summary.items()))
        self.barrier()
        return summary

    def offer_start(self) -> None:
        """Make the weights a stage starts from its first best.pt, so an epoch must beat them to replace it
        (main process; nothing for a stage that starts from scratch)."""
        start = self.pos.start_metrics
        if start is None or self.stage.best_metric not in (summary := start | self.stage.scores(start, start)):
            return
        self.pos.best = summary[self.stage.best_metric]
        self.save_best(summary, from_start=True)
        self.log.line(
            f"{self.stage.name} best.pt: the weights it starts from, until an epoch beats their "
            f"{self.stage.best_metric} {self.pos.best:.4f}"
        )

    def measure(self, when: str) -> dict[str, float]:
        """Validate the stage's eval generator; its grid goes to grids/<stage>_<when>.png and TensorBoard."""
        name = self.stage.name
        colorizer = val_colorizer(self.stage.eval_generator(), self.cfg, self.ctx.device)
        summary, grid = validate(colorizer, self.val_loader(), self.cfg.data.grid_images, f"{name} prediction")
        if grid is not None:
            viz.save_grid(grid, self.run_dir / "grids" / f"{name}_{when}.png")
            self.log.image(f"{name}/grid", grid, self.pos.step)
        return summary

    def val_loader(self) -> DataLoader:
        batch, workers = self.cfg.train.batch_size, min(self.cfg.data.workers, 1)
        collate = functools.partial(collate_images, size=self.cfg.data.size)
        return DataLoader(self.val_set, batch_size=batch, num_workers=workers, collate_fn=collate)

    def is_better(self, summary: dict[str, float]) -> bool:
        name = self.stage.best_metric
        if name not in summary:
            key = self.stage.best_metric_key
            raise ConfigError(f"{key}={name} is not computed in validation; valid: {sorted(summary)}.")
        return is_better(name, summary[name], self.pos.best)

    def may_be_best(self) -> bool:
        """Whether the weights just validated may become best.pt: their last step trained at ``data.size``
        (weights still on progressive resizing's small crops are not what inference runs), or the stage ends."""
        return self.pos.finished or self.last_crop_size == self.cfg.data.size

    def barrier(self) -> None:
        if self.rt.distributed:
            torch.distributed.barrier()

    # ------------------------------------------------------- checkpoints, faults
    def save_last(self) -> None:
        """last.pt: everything a resume needs (main process only)."""
        if self.rt.is_main:
            save_checkpoint(self.state(), checkpoint_path(self.run_dir, self.stage.name, "last"))

    def save_best(self, summary: dict[str, float], from_start: bool = False) -> None:
        """best.pt: what inference and stage 2's init_from need: the (EMA) generator, config, metrics; with
        ``from_start`` the weights the stage started from, which no epoch has beaten (yet)."""
        weights = self.stage.eval_generator().state_dict()
        state = inference_checkpoint(self.cfg, weights, self.stage.name, summary, self.pos.step)
        extra = {"stage_title": self.stage.title} | ({"from_start": True} if from_start else {})
        save_checkpoint(state | extra, checkpoint_path(self.run_dir, self.stage.name, "best"))

    def state(self) -> dict[str, Any]:
        """The stage's weights, optimizers and scalers, plus the position in the run, time spent and RNG."""
        return (
            {"config": config_to_dict(self.cfg), "stage": self.stage.name, "stage_title": self.stage.title}
            | {"stages": self.stages}
            | self.pos.state()
            | {"metrics": self.results.get(self.stage.name, {}), "spent_seconds": self.budget.spent, "rng": rng_state()}
            | self.stage.state_dict()
        )

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a last.pt of this stage: same step, learning rate and data order."""
        where = state.get("path", "the checkpoint")
        self.stage.load_state_dict(state, where)
        check_resume_state(state, where)
        self.pos = Position.from_state(state)
        set_rng_state(state["rng"])

    def check_finite(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Stop on a NaN or Inf loss without saving, so the last good checkpoint stays."""
        bad = next(
            (
                (step, name, value)
                for step, values in rows
                for name, value in values.items()
                if name.startswith("loss") and not math.isfinite(value)
            ),
            None,
        )
        if any_rank(bad is not None, self.rt):
            step, name, value = bad or (self.pos.step, "a loss on another rank", "not finite")
            last = checkpoint_path(self.run_dir, self.stage.name, "last")
            kept = f"{last} still holds the last good weights" if last.exists() else "no checkpoint was written yet"
            raise TrainingStopped(
                f"{self.stage.name} step {step}: {name} is {value}; stopped without saving, {kept}; lower the "
                "learning rate or try --set train.amp=false, then --resume."
            )

    # ----------------------------------------------------------------- logging
    def data_summary(self) -> str:
        unreadable = self.train_set.unreadable + self.val_set.unreadable
        skipped = f"; skipped {unreadable} unreadable files (named in the warnings above)" if unreadable else ""
        budget = f", {self.budget.seconds / 60:.1f} min" if self.budget.seconds is not None else ""
        return (
            f"{self.stage.name}: {len(self.train_set)} training images, {len(self.val_set)} validation images, "
            f"{self.steps_per_epoch} steps of {self.cfg.train.batch_size} per epoch, "
            f"{self.epochs} epochs{budget}{skipped}"
        )

    def log_epoch(self, train: dict[str, float], val: dict[str, float], seconds: float) -> None:
        self.log.scalars({f"{self.stage.name}/epoch_seconds": seconds}, self.pos.step)
        losses = "  ".join(f"{k} {v:.4f}" for k, v in train.items() if k.startswith("loss") or k.startswith("d_"))
        checks = "  ".join(f"{k} {v:.2f}" for k, v in val.items())
        skipped = f"  skipped {int(train['skipped_images'])} bad images" if train.get("skipped_images") else ""
        budget = self.budget
        spent = f" ({budget.spent / 60:.1f} of {budget.seconds / 60:.1f} min)" if budget.seconds is not None else ""
        self.log.line(
            f"{self.stage.name} epoch {self.pos.epoch} of {self.epochs}{spent}  {losses}  |  val {checks or '-'}  |  "
            f"{seconds:.0f} s{skipped}"
        )


def stage_charts(stage: type[Stage]) -> dict[str, list[str]]:
    """The Custom Scalars charts of a stage: its own, and its val colour beside its val fidelity."""
    name = stage.name
    charts = {title: [f"{name}/{value}" for value in values] for title, values in stage.charts.items()}
    fidelity = [f"{name}_val/{metric}" for metric in COLOR_BESIDE_FIDELITY]
    return charts | {"val: colorfulness and ΔCF beside PSNR and CIEDE2000": fidelity}


class Interval:
    """The step values since the last sync with the host, kept on the device until :meth:`read`."""

    def __init__(self):
        self.steps: list[tuple[int, dict[str, Tensor]]] = []
        self.images = 0
        self.started = time.perf_counter()

    def add(self, step: int, values: dict[str, Tensor], images: int) -> None:
        self.steps.append((step, values))
        self.images += images

    def read(self) -> tuple[list[tuple[int, dict[str, float]]], float]:
        """(step, name -> value) per step, read in one transfer, and the interval's images per second."""
        flat = torch.stack([value.float() for _, values in self.steps for value in values.values()]).tolist()
        rows, i = [], 0
        for step, values in self.steps:
            rows.append((step, dict(zip(values, flat[i : i + len(values)], strict=True))))
            i += len(values)
        return rows, self.images / max(time.perf_counter() - self.started, 1e-9)


class _stop_signals:
    """Turns SIGINT/SIGTERM into ``loop.stop_requested`` for the duration of a run."""

    def __init__(self, loop: Loop):
        self.loop = loop
        self.previous: dict[signal.Signals, Any] = {}  # the handlers to put back, set on entry

    def __enter__(self):
        self.previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in self.previous:
            signal.signal(sig, self._request_stop)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _request_stop(self, signum, frame):
        self.loop.stop_requested = True
