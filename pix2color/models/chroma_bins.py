"""Chroma as a distribution over quantized bins (Zhang et al., "Colorful Image Colorization", ECCV 2016).

The generator's last layer gives one logit per in-gamut cell of a grid over the chroma plane;
:class:`AnnealedMean` decodes them to chroma, and ``losses.RebalancedBinsLoss`` trains them against
:meth:`ChromaBins.soft_encode` of the true chroma.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pix2color import color

NEIGHBORHOOD = torch.tensor([(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)])  # (9, 2) cell offsets


class ChromaBins(nn.Module):
    """The in-gamut cells of a grid over the chroma plane, as non-persistent buffers (rebuilt from the config).

    Args:
        space: "lab" or "luv", the space the chroma is normalised in.
        step: the cell's side in the space's own units; 10 gives Zhang et al.'s bins in Lab.
        sigma: the soft encoding's Gaussian width, in cells (Zhang et al.: 5 ab units, half a cell).
    """

    def __init__(self, space: str = "lab", step: float = 10.0, sigma: float = 0.5):
        super().__init__()
        centers, spacing = color.chroma_grid(space, step)
        cells = torch.round(centers / spacing).long()  # integer grid coordinates of each bin
        origin = cells.amin(dim=0)
        cells -= origin
        lookup = torch.full(tuple((cells.amax(dim=0) + 1).tolist()), -1, dtype=torch.long)
        lookup[cells[:, 0], cells[:, 1]] = torch.arange(len(cells))
        self.sigma = sigma
        self.register_buffer("centers", centers.clone(), persistent=False)  # (Q, 2); the grid is cached
        self.register_buffer("spacing", spacing.clone(), persistent=False)  # (2,)
        self.register_buffer("origin", origin, persistent=False)  # (2,) grid coordinates of lookup[0, 0]
        self.register_buffer("lookup", lookup, persistent=False)  # (I, J) bin index of each cell, -1 outside
        self.register_buffer("lookup_size", torch.tensor(lookup.shape), persistent=False)  # (2,) I and J
        self.register_buffer("neighborhood", NEIGHBORHOOD.clone(), persistent=False)

    def __len__(self) -> int:
        return len(self.centers)

    def soft_encode(self, chroma: Tensor) -> tuple[Tensor, Tensor]:
        """Spread each pixel's chroma over the bins of the 3x3 cells around it with Gaussian weights.

        Args:
            chroma: (B, 2, H, W) normalised chroma.

        Returns:
            index: (B, 9, H, W) long bin indices (0 where a cell is out of gamut, with weight 0).
            weight: (B, 9, H, W) float weights summing to 1 over dim 1; the largest is the nearest bin.
        """
        position = chroma.float() / self.spacing.view(1, 2, 1, 1)  # in cells
        cells = torch.round(position).long().unsqueeze(1) + self.neighborhood.view(1, 9, 2, 1, 1)  # (B, 9, 2, H, W)
        distance2 = (position.unsqueeze(1) - cells).square().sum(dim=2)  # (B, 9, H, W)
        local = cells - self.origin.view(1, 1, 2, 1, 1)
        limits = self.lookup_size.view(1, 1, 2, 1, 1)
        on_grid = ((local >= 0) & (local < limits)).all(dim=2)
        local = torch.minimum(local.clamp_min(0), limits - 1)
        index = self.lookup[local[:, :, 0], local[:, :, 1]]
        valid = on_grid & (index >= 0)
        weight = torch.exp(-distance2 / (2 * self.sigma**2)) * valid
        return index.clamp_min(0), weight / weight.sum(dim=1, keepdim=True).clamp_min(1e-12)

    def decode(self, logits: Tensor, temperature: float) -> Tensor:
        """The annealed mean: the mean chroma under softmax(logits / temperature).

        Args:
            logits: (B, Q, H, W), one per bin.
            temperature: 1 gives the mean, towards 0 the mode.

        Returns:
            (B, 2, H, W) float32 normalised chroma.
        """
        probabilities = torch.softmax(logits.float() / temperature, dim=1)
        return torch.einsum("bqhw,qc->bchw", probabilities, self.centers)


class AnnealedMean(nn.Module):
    """The generator's head for ``model.chroma_head: bins``: (B, Q, H, W) logits -> (B, 2, H, W) chroma.

    Args:
        bins: the bins the logits score.
        temperature: Zhang et al.'s 0.38 keeps the colour of the likely modes without their noise.
    """

    def __init__(self, bins: ChromaBins, temperature: float):
        super().__init__()
        self.bins = bins
        self.temperature = temperature

    def forward(self, logits: Tensor) -> Tensor:
        with torch.autocast(logits.device.type, enabled=False):
            return self.bins.decode(logits, self.temperature)
