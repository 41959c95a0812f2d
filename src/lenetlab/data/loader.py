"""A tensor-resident batch loader: the whole split lives on the device, batches are index gathers.

Airbench-style: no Dataset, no worker processes, no per-sample Python work. Each epoch draws one
permutation from a generator seeded by ``(seed, epoch)``, so any epoch is reproducible on its own
(resume needs only the epoch number and the batch index); a final batch of one example joins the
batch before it (:func:`batch_count`). With ``world_size > 1`` the permutation is sharded like
:class:`torch.utils.data.DistributedSampler`: every rank sees the same permutation, padded by
wrapping to a multiple of ``world_size`` (``pad=True``, training) and takes every
``world_size``-th index from ``rank``; ``pad=False`` gives an exact, non-overlapping partition
for evaluation (ranks may then differ by one example).

Example::

    from lenetlab.data import load
    from lenetlab.data.loader import TensorLoader
    s = load("mnist-subset")
    loader = TensorLoader(s.train.x, s.train.y, batch_size=128, spec=s.input_spec, device="cpu")
    for epoch in range(3):
        loader.set_epoch(epoch)
        for xb, yb in loader:          # xb float [B, 1, 32, 32] normalised, yb int64 [B]
            ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from lenetlab.data.transforms import InputSpec, prepare

Batch = tuple[torch.Tensor, torch.Tensor | None]


def batch_count(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches in an epoch of ``n`` examples: ``drop_last`` drops a partial final batch; otherwise a
    final batch of a single example joins the batch before it (batch norm cannot normalise one
    example: "Expected more than 1 value per channel"); only an epoch of one example is a batch of one."""
    if drop_last:
        return n // batch_size
    return n // batch_size if n % batch_size == 1 and n > batch_size else -(-n // batch_size)


class TensorLoader:
    """Yield ``(x, y)`` batches gathered from device-resident tensors.

    ``x`` is ``uint8 [N, C, H, W]`` (kept uint8 on ``device``; each batch is converted by
    :func:`prepare` with ``spec``, or returned as uint8 when ``spec`` is None); ``y`` is
    ``int64 [N]`` or None (unlabelled test sets yield ``y = None``). Batches hold ``batch_size``
    examples; the last one may hold fewer, or one more (see :func:`batch_count`).
    ``transform(x_float) -> x_float`` is an optional per-batch hook (augmentation) applied after
    ``prepare`` and only when :attr:`training` is True (the default when ``shuffle``).
    ``len(loader)`` is the number of batches per epoch for this rank; :meth:`set_epoch` chooses the
    epoch, ``start_batch`` the first batch to yield (exact mid-epoch resume).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        rank: int = 0,
        world_size: int = 1,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        spec: InputSpec | None = None,
        pad: bool | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} not in [0, world_size={world_size})")
        if y is not None and len(y) != len(x):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = None if y is None else y.to(self.device)
        self.batch_size, self.shuffle, self.seed, self.drop_last = int(batch_size), shuffle, int(seed), drop_last
        self.spec, self.transform, self.dtype = spec, transform, dtype
        self.rank, self.world_size = int(rank), int(world_size)
        self.pad = shuffle if pad is None else pad  # pad (DistributedSampler) for training, exact for eval
        self.training = shuffle
        self.epoch = 0
        self.start_batch = 0

    # ---------------------------------------------------------------- indices
    def num_samples(self) -> int:
        """Examples this rank sees per epoch (before ``drop_last``)."""
        n, w = len(self.x), self.world_size
        if self.pad:
            return -(-n // w) if n else 0
        return len(range(self.rank, n, w))

    def __len__(self) -> int:
        """Batches per epoch on this rank (all ranks agree when ``pad`` is True)."""
        return batch_count(self.num_samples(), self.batch_size, self.drop_last)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (it seeds the permutation) and skip its first ``start_batch`` batches."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def indices(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's example indices (int64 on the device) for ``epoch`` (default: the current one)."""
        n = len(self.x)
        epoch = self.epoch if epoch is None else epoch
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(n, generator=g)
        else:
            perm = torch.arange(n)
        if self.pad and self.world_size > 1 and n:
            total = -(-n // self.world_size) * self.world_size
            perm = perm.repeat(-(-total // n))[:total]  # wrap around, as DistributedSampler does
        return perm[self.rank :: self.world_size].to(self.device)

    # ---------------------------------------------------------------- batches
    def batch(self, idx: torch.Tensor) -> Batch:
        """Gather and convert the examples at ``idx`` (int64 on the device)."""
        xb = self.x.index_select(0, idx)
        if self.spec is not None:
            xb = prepare(xb, self.spec, self.dtype)
        if self.transform is not None and self.training:
            xb = self.transform(xb)
        return xb, None if self.y is None else self.y.index_select(0, idx)

    def __iter__(self) -> Iterator[Batch]:
        idx = self.indices()
        nb, bs = len(self), self.batch_size
        start, self.start_batch = self.start_batch, 0  # the skip applies to one pass only
        for b in range(start, nb):
            last = b == nb - 1 and not self.drop_last  # takes the rest: a single leftover example joins it
            yield self.batch(idx[b * bs : None if last else (b + 1) * bs])
