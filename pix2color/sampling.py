"""Reproducible, resumable sample order: the same crops in the same order, however the run is cut.

The sampler yields ``(index, sample_seed)``: the index picks the image, the seed drives its random
crop and flip. Both depend only on (run seed, epoch, position), never on worker count or on where
a run was interrupted, so a resumed run sees exactly the data an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """A :class:`DistributedSampler` that can start mid-epoch and hands out per-sample seeds."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int, drop_last: bool):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Begin ``epoch`` at this rank's ``start``-th sample (0 for a fresh epoch)."""
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())
        for position in range(self.start, len(indices)):
            yield indices[position], sample_seed(self.seed, self.epoch, position * self.num_replicas + self.rank)

    def __len__(self) -> int:
        return super().__len__() - self.start


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed that is a pure function of the run seed, epoch and global position."""
    return (seed * 1_000_003 + epoch * 100_003 + position) * 2_654_435_761 % 2**63


class SeededDataset(Dataset):
    """Runs each ``dataset[index]`` under its own seed, leaving the caller's RNG untouched."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]
