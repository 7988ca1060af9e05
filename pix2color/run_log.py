"""What a run shows: TensorBoard scalars, images and text in RUN_DIR/tb, and one console line per epoch.

Only the main process logs; on other ranks every method is a no-op.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import torch
import yaml
from tqdm import tqdm


class RunLog:
    """TensorBoard writer plus console summaries for one run folder."""

    def __init__(self, tb_dir: Path, enabled: bool):
        self.enabled = enabled
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(tb_dir))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Log each ``name: value`` (names like ``pretrain/loss_l1``) at ``step``."""
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def image(self, name: str, image_chw: torch.Tensor, step: int) -> None:
        """Log a (3, H, W) uint8 image."""
        if self.writer is not None:
            self.writer.add_image(name, image_chw, step)

    def charts(self, groups: Mapping[str, Mapping[str, list[str]]]) -> None:
        """TensorBoard's Custom Scalars tab: group -> chart title -> the scalar names drawn together."""
        if self.writer is not None:
            layout = {
                group: {title: ["Multiline", names] for title, names in charts.items()}
                for group, charts in groups.items()
            }
            self.writer.add_custom_scalars(layout)

    def config(self, config: dict) -> None:
        """The resolved config as text, so a run shows how it was made."""
        if self.writer is not None:
            self.writer.add_text("config", "```yaml\n" + yaml.safe_dump(config, sort_keys=False) + "\n```", 0)

    def hparams(self, config: dict, metrics: Mapping[str, float]) -> None:
        """Hyperparameters next to the final metrics, for TensorBoard's HParams tab."""
        if self.writer is None:
            return
        flat = {
            f"{section}.{key}": value if isinstance(value, (int, float, str, bool)) else str(value)
            for section, values in config.items()
            for key, value in values.items()
        }
        self.writer.add_hparams(flat, {f"hparam/{k}": v for k, v in metrics.items()}, run_name="hparams")

    def line(self, text: str) -> None:
        """A console line that does not break the progress bar."""
        if self.enabled:
            tqdm.write(text, file=sys.stdout)

    def progress(self, total: int, description: str) -> tqdm:
        """A progress bar with ETA (disabled off the main process)."""
        return tqdm(total=total, desc=description, disable=not self.enabled, dynamic_ncols=True, leave=False)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
