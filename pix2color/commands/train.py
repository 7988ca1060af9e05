"""``train.py`` / ``pix2color-train``: the two-stage training run from a YAML config.

The config is read and checked before anything imports torch, so a typo is reported at once; the stages
(:data:`pix2color.training.stages.STAGES`) and the loop load after it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pix2color.commands.common import add_config_args, run_cli
from pix2color.config import (
    RESUME_SAFE,
    Config,
    apply_overrides,
    config_from_dict,
    load_config,
    marked_keys,
    set_value,
    validate,
)
from pix2color.errors import ConfigError

ALL_STAGES = "both"  # the --stage value (and the default) that runs every stage in order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pix2color-train",
        description="Train a colorization U-Net: stage 1 (L1 on ab), then stage 2 (pix2pix GAN).",
    )
    add_config_args(parser)
    parser.add_argument("--data", nargs="+", metavar="DIR", help="training images: folders or manifests (data.train)")
    parser.add_argument("--out", type=Path, metavar="RUN_DIR", help="run folder (default: runs/<config>_<time>)")
    parser.add_argument(
        "--stage",
        metavar="NAME",
        help=f"which stage to run: a name in pix2color.training.stages.STAGES, or {ALL_STAGES} (every stage in "
        f"order, the default)",
    )
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR_or_CKPT", help="continue an interrupted run")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: train(args))


def train(args: argparse.Namespace) -> int:
    """Resolve the config and run folder, then hand over to the training loop (imported lazily: it loads fastai)."""
    resume = _load_resume(args.resume) if args.resume else None
    cfg = _resolve_config(args, resume)
    from pix2color.training.stages import STAGES  # after the config's checks: it imports torch

    stages = _stages(args.stage, resume, list(STAGES))
    run_dir = _run_dir(args, resume, STAGES)
    if resume and resume["stage"] not in stages:
        raise ConfigError(
            f"--resume {resume['path']} is a {resume['stage']} checkpoint but --stage {args.stage} does not run "
            "that stage; drop --stage to continue where the run stopped."
        )
    if resume and resume.get("finished") and resume["stage"] == stages[-1]:  # a best.pt has no "finished"
        epochs = getattr(cfg, STAGES[resume["stage"]].section).epochs
        print(
            f"{resume['path']} is the end of a finished run ({_end_of(resume, epochs)}); "
            "nothing to resume, nothing written."
        )
        return 0

    from pix2color.runtime import seed_everything, setup_runtime, teardown_runtime
    from pix2color.training.loop import Interrupted, Loop

    runtime = setup_runtime(cfg.train.device)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    try:
        started = time.perf_counter()
        results = Loop(cfg, run_dir, runtime, stages).run(resume)
    except Interrupted as stop:
        if runtime.is_main:
            print(f"interrupted: saved {stop.checkpoint}; resume with: pix2color-train --resume {run_dir}")
        return 0
    finally:
        teardown_runtime(runtime)
    if runtime.is_main:
        _print_summary(run_dir, results, time.perf_counter() - started)
    return 0


def _stages(choice: str | None, resume: dict | None, order: list[str]) -> list[str]:
    """The stages to run, in order: ``--stage``'s, else those of the resumed run, else all of ``order``."""
    if choice is None:
        return resume.get("stages", order) if resume else order
    if choice == ALL_STAGES:
        return order
    if choice not in order:
        raise ConfigError(f"--stage {choice} is not a stage; valid: {', '.join([*order, ALL_STAGES])}.")
    return [choice]


def _load_resume(target: Path) -> dict:
    from pix2color.checkpoint import load_checkpoint
    from pix2color.training.stages import STAGES

    path = _resume_checkpoint(target, list(STAGES))
    state = load_checkpoint(path)
    state["path"] = str(path)
    return state


def _resume_checkpoint(target: Path, order: list[str]) -> Path:
    """A checkpoint file as given, or the newest last.pt of a run folder (the latest stage's in ``order``)."""
    from pix2color.checkpoint import checkpoint_path

    if target.is_file():
        return target
    candidates = [checkpoint_path(target, stage, "last") for stage in reversed(order)]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        names = " or ".join(str(path.relative_to(target)) for path in candidates)
        raise ConfigError(f"--resume {target}: no {names} there.")
    return found


def _resolve_config(args: argparse.Namespace, resume: dict | None) -> Config:
    """The YAML (or the checkpoint's config on --resume), then --set overrides, then --data."""
    source = str(args.config or (resume["path"] if resume else "the defaults"))
    if resume is None:
        cfg = load_config(args.config, args.overrides)
    else:
        if args.config or args.data:
            raise ConfigError("--resume takes the config and data from the checkpoint; drop --config and --data.")
        cfg = config_from_dict(resume["config"], source)
        overridden = apply_overrides(cfg, args.overrides)
        resume_safe = set(marked_keys(RESUME_SAFE))
        if overridden - resume_safe:
            raise ConfigError(
                f"--set {sorted(overridden - resume_safe)[0]} cannot change on --resume (it would change the "
                f"schedule, data order or model); only {', '.join(sorted(resume_safe))} can."
            )
        validate(cfg, source, overridden)
    if args.data:
        set_value(cfg, "data.train", [str(d) for d in args.data], "--data")
    if not cfg.data.train:
        raise ConfigError(f"{source}: data.train is empty; pass --data DIR or set data.train in the config.")
    return cfg


def _end_of(resume: dict, epochs: int) -> str:
    """How a finished stage of ``epochs`` ended: "gan epoch 3 of 3", or "gan epoch 2 of 20, its time budget spent"."""
    end = f"{resume['stage']} epoch {resume['epoch']} of {epochs}"
    return end if resume["epoch"] >= epochs else f"{end}, its time budget spent"


def _run_dir(args: argparse.Namespace, resume: dict | None, stages: dict) -> Path:
    """--out, else the resumed checkpoint's run folder, else runs/<config>_<time>; never reuse a finished run
    (but a stage that starts from another's checkpoint, run alone, continues its folder)."""
    if resume is not None:
        checkpoint = Path(resume["path"]).resolve()
        if args.out is None and checkpoint.parent.parent.name != "checkpoints":
            raise ConfigError(f"--resume {checkpoint} is not inside RUN_DIR/checkpoints/<stage>/; pass --out RUN_DIR.")
        return args.out or checkpoint.parents[2]
    stem = Path(args.config).stem if args.config else "defaults"
    run_dir = args.out or Path("runs") / f"{stem}_{time.strftime('%Y%m%d-%H%M%S')}"
    continues = args.stage in stages and stages[args.stage].uses_checkpoint
    if (run_dir / "checkpoints").exists() and not continues:
        raise ConfigError(
            f"--out {run_dir} already holds checkpoints; continue it with --resume {run_dir} or choose another --out."
        )
    return run_dir


def _print_summary(run_dir: Path, results: dict, seconds: float) -> None:
    for stage, values in results.items():
        print(f"{stage} final val: " + "  ".join(f"{k} {v:.3f}" for k, v in values.items()))
    print(f"done in {seconds / 60:.1f} min")
    print(f"  config:      {run_dir / 'config.yaml'}")
    print(f"  checkpoints: {run_dir / 'checkpoints'}/<stage>/best.pt and last.pt")
    print(f"  grids:       {run_dir / 'grids'}")
    print(f"  logs:        tensorboard --logdir {run_dir / 'tb'}")


if __name__ == "__main__":
    sys.exit(main())
