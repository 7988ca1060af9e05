"""What every stage builds on: the device and precision, DDP/compile wrapping, the update step, the EMA."""

from __future__ import annotations

import dataclasses
from functools import cached_property

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from pix2color import color
from pix2color.config import Config
from pix2color.errors import ConfigError
from pix2color.models.generator import Generator, build_generator
from pix2color.runtime import Runtime, amp_dtype


@dataclasses.dataclass
class StageContext:
    """The run's config and place (device, rank) as the stages use them."""

    cfg: Config
    runtime: Runtime

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @cached_property
    def amp(self) -> torch.dtype | None:
        """The autocast dtype, or None for fp32."""
        return amp_dtype(self.device, self.cfg.train.amp, self.cfg.train.amp_dtype)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.cfg.train.channels_last else torch.contiguous_format

    def generator(self, weights_from_checkpoint: bool) -> Generator:
        """A fresh generator on the device; pretrained weights are never fetched when a checkpoint gives them."""
        model_cfg = self.cfg.model
        if weights_from_checkpoint:
            model_cfg = dataclasses.replace(model_cfg, pretrained="none")
        generator = build_generator(model_cfg, self.cfg.data.size, self.cfg.color.space)
        return generator.to(self.device, memory_format=self.memory_format)

    def on_device(self, module: nn.Module) -> nn.Module:
        return module.to(self.device, memory_format=self.memory_format)

    def wrap(self, module: nn.Module) -> nn.Module:
        """SyncBatchNorm and DDP under torchrun, then torch.compile when asked; returns the training view."""
        if self.runtime.distributed:
            if self.cfg.train.sync_batchnorm:
                if self.device.type != "cuda":
                    raise ConfigError(
                        "train.sync_batchnorm=true needs CUDA: PyTorch's SyncBatchNorm has no CPU kernel."
                    )
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = self.cfg.model
            unused = model.encoder_frozen_epochs > 0 or model.encoder_frozen_share > 0
            module = DistributedDataParallel(module, device_ids=ids, find_unused_parameters=unused)
        return torch.compile(module) if self.cfg.train.compile else module

    def ema(self, model: nn.Module, decay: float) -> AveragedModel | None:
        """An exponential moving average of ``model`` with ``decay``, or None when ``decay`` is 0 (off)."""
        if decay == 0:
            return None
        return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling is needed only for fp16; bf16 and fp32 get a disabled scaler."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)

    def to_model_space(self, rgb: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 RGB (B, 3, S, S) -> L (B, 1, S, S) and chroma (B, 2, S, S), normalised, in the memory format."""
        lightness, chroma = color.rgb_to_l_chroma(rgb, self.cfg.color.space)
        return lightness.contiguous(memory_format=self.memory_format), chroma

    def update(
        self, loss: Tensor, optimizer: torch.optim.Optimizer, model: nn.Module, scaler: torch.amp.GradScaler
    ) -> Tensor:
        """Backward, unscale, clip (or just measure) the gradient norm, step. Returns the norm, on the device."""
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        max_norm = self.cfg.train.grad_clip or float("inf")
        norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_norm)
        scaler.step(optimizer)
        scaler.update()
        return norm.detach()
